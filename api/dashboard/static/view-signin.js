// #/signin: the token form. The token is kept for this browser tab only.
import * as api from "./api.js";
import { errorBox, h } from "./dom.js";

const REASON_KEY = "cnnlab-signin-reason";

// Forget the token and ask for another, saying why.
export function signInAgain(reason) {
  api.token.clear();
  if (reason) sessionStorage.setItem(REASON_KEY, reason);
  location.hash = "#/signin";
}

export default function signIn(main) {
  const reason = sessionStorage.getItem(REASON_KEY);
  sessionStorage.removeItem(REASON_KEY);
  const input = h("input", { id: "token", type: "password", autocomplete: "current-password",
    required: true, placeholder: "API token", "aria-label": "API token" });
  const message = h("div", {}, reason ? errorBox({ message: reason }) : null);
  const form = h("form", { class: "card signin", onsubmit: async (e) => {
    e.preventDefault();
    api.token.set(input.value.trim());
    try {
      await api.get("/v1/jobs?limit=1");
      location.hash = "#/jobs";
    } catch (err) {
      api.token.clear();
      message.replaceChildren(errorBox(err));
      if (location.hash !== "#/signin") location.hash = "#/signin";
    }
  } },
  h("h1", {}, "Sign in"),
  h("p", {}, "Paste an API token. An administrator creates one with ",
    h("code", {}, "cnnlab token create USER"), ". It is kept for this browser tab only."),
  h("label", { for: "token" }, "Token"), input,
  h("button", { type: "submit", class: "primary" }, "Sign in"), message);
  main.append(form);
  input.focus();
}
