// The console's own script: parts of a page marked with data-refresh-url reload themselves.
// No framework and no build step. When the session has ended the page reloads, and the
// server sends the browser to the login form.
"use strict";

function refresh(element) {
  const url = element.dataset.refreshUrl;
  const seconds = Number(element.dataset.refreshSeconds || "5");
  const tick = async () => {
    try {
      const response = await fetch(url, {
        credentials: "same-origin",
        headers: { "X-Console-Fragment": "1" },
        redirect: "manual",
      });
      if (response.status === 401 || response.type === "opaqueredirect") {
        window.location.reload();
        return;
      }
      if (response.ok) {
        element.innerHTML = await response.text();
        element.dispatchEvent(new CustomEvent("console:refreshed", { bubbles: true }));
        if (element.querySelector("[data-refresh-stop]")) {
          return;
        }
      }
    } catch (error) {
      // A network blip: try again at the next tick.
    }
    window.setTimeout(tick, seconds * 1000);
  };
  window.setTimeout(tick, seconds * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh-url]").forEach(refresh);
});
