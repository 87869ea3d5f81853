// Hash routing: one view per route, drawn into <main>. Work a view starts (timers, streams) is
// registered with onLeave and stopped when the route changes.
import * as api from "./api.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const cleanups = [];

export function onLeave(fn) {
  cleanups.push(fn);
}

// Call fn every `ms` while the tab is visible, until the route changes.
export function every(ms, fn) {
  const timer = setInterval(() => {
    if (!document.hidden) fn();
  }, ms);
  onLeave(() => clearInterval(timer));
}

// An AbortSignal that fires when the route changes.
export function leaving() {
  const controller = new AbortController();
  onLeave(() => controller.abort());
  return controller.signal;
}

// routes: [[pattern, view], ...]; a view is called as view(main, ...captured groups).
// Without a token every route shows `signIn`; an unknown route goes to `home`.
export function start({ routes, signIn, home }) {
  function render() {
    for (const fn of cleanups.splice(0)) fn();
    if (!api.token.get() && location.hash !== signIn) {
      location.hash = signIn;
      return;
    }
    const hash = location.hash || home;
    nav.hidden = !api.token.get();
    for (const a of nav.querySelectorAll("a[data-route]")) {
      a.classList.toggle("active", hash.startsWith(a.getAttribute("href")));
    }
    for (const [pattern, view] of routes) {
      const match = hash.match(pattern);
      if (match) {
        main.replaceChildren();
        view(main, ...match.slice(1));
        window.scrollTo(0, 0);
        return;
      }
    }
    location.hash = home;
  }
  window.addEventListener("hashchange", render);
  render();
}
