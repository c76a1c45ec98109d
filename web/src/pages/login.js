// The token form: asked once per tab (kept in session storage until "Log out").

import { h, replace } from '../dom.js';

export function loginPage(main, app) {
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'data-testid': 'token-input',
    'aria-describedby': 'token-help',
  });
  const error = h('p', { className: 'error', role: 'alert', 'data-testid': 'login-error', id: 'login-error' });
  const submit = h('button', { type: 'submit', 'data-testid': 'login-submit' }, 'Sign in');
  const form = h(
    'form',
    {
      className: 'card login',
      'aria-labelledby': 'login-title',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const tok = input.value.trim();
        if (!tok) return;
        submit.disabled = true;
        error.textContent = '';
        try {
          await app.signIn(tok);
        } catch (e) {
          error.textContent = e.status === 401 ? 'That token was refused.' : e.message;
          submit.disabled = false;
          input.focus();
        }
      },
    },
    h('h1', { id: 'login-title' }, 'Sign in'),
    h('label', { for: 'token' }, 'API token'),
    input,
    h(
      'p',
      { id: 'token-help', className: 'muted' },
      'A token from "scalepilot token create". It is kept in this tab only, until you log out.',
    ),
    submit,
    error,
  );
  replace(main, form);
  input.focus();
  return { stop() {} };
}
