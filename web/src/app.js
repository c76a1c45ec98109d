// The scalepilot dashboard: login, groups, a group's page (chart, actions, timeline), audit.
// Hash routes (#/, #/groups/NAME, #/audit) so the daemon serves one page at "/".

import 'uplot/dist/uPlot.min.css';
import './style.css';
import { api, clearToken, setOnUnauthorized, setToken, token } from './api.js';
import { h, replace } from './dom.js';
import { loginPage } from './pages/login.js';
import { groupsPage } from './pages/groups.js';
import { groupPage } from './pages/group.js';
import { auditPage } from './pages/audit.js';

const main = document.getElementById('main');
const messageEl = document.getElementById('message');

/** The signed-in identity ({name, role}) or null. */
let me = null;
/** The page on screen: its stop() is called when the route changes. */
let current = null;

export const app = {
  get me() {
    return me;
  },
  canOperate() {
    return !!me && (me.role === 'operator' || me.role === 'admin');
  },
  isAdmin() {
    return !!me && me.role === 'admin';
  },
  /** A short note in the status line (cleared by the next one or after a while). */
  say(text, kind = 'info') {
    messageEl.className = `message message-${kind}`;
    messageEl.textContent = text;
    clearTimeout(app._sayTimer);
    if (text) app._sayTimer = setTimeout(() => app.say(''), 8000);
  },
  async signIn(tok) {
    const who = await api.whoami(tok);
    setToken(tok);
    me = who;
    showChrome();
    if (location.hash === '' || location.hash === '#/login') location.hash = '#/';
    else route();
  },
  signOut(note) {
    clearToken();
    me = null;
    showChrome();
    route();
    if (note) app.say(note, 'error');
  },
};

function showChrome() {
  document.getElementById('nav').hidden = !me;
  document.getElementById('who').hidden = !me;
  document.getElementById('nav-audit').hidden = !app.isAdmin();
  document.getElementById('whoami').textContent = me ? `${me.name} (${me.role})` : '';
}

function route() {
  if (current && current.stop) current.stop();
  current = null;
  if (!me) {
    current = loginPage(main, app);
    return;
  }
  const hash = location.hash.replace(/^#/, '') || '/';
  const group = hash.match(/^\/groups\/(.+)$/);
  if (group) current = groupPage(main, app, decodeURIComponent(group[1]));
  else if (hash === '/audit') current = auditPage(main, app);
  else current = groupsPage(main, app);
  const h1 = main.querySelector('h1');
  if (h1) {
    h1.tabIndex = -1;
    h1.focus({ preventScroll: true });
  }
}

setOnUnauthorized(() => {
  if (me) app.signOut('Your token was refused (expired or revoked): sign in again.');
});

document.getElementById('logout').addEventListener('click', () => app.signOut());
window.addEventListener('hashchange', route);

async function start() {
  const t = token();
  if (t) {
    try {
      me = await api.whoami(t);
    } catch (e) {
      if (e.status === 401) clearToken();
      else {
        replace(main, h('p', { role: 'alert', className: 'error' }, e.message));
        return;
      }
    }
  }
  showChrome();
  route();
}

start();
