// Refresh on an interval, one request at a time, stopped with the page.

export function poll(fn, ms) {
  let timer = null;
  let stopped = false;
  let running = false;
  let again = false;
  const tick = async () => {
    if (stopped) return;
    running = true;
    try {
      await fn();
    } catch {
      // fn shows its own errors; the next tick tries again.
    } finally {
      running = false;
      if (!stopped) {
        if (again) {
          again = false;
          tick();
        } else timer = setTimeout(tick, ms);
      }
    }
  };
  tick();
  return {
    /** Refresh now (e.g. after an action) instead of at the next tick. */
    now() {
      if (running) {
        again = true;
        return;
      }
      clearTimeout(timer);
      tick();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
