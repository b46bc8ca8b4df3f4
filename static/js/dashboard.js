// The dashboard's only script: copy buttons, and sending long searches by POST.
// Loaded as a file (no inline scripts), so the Content-Security-Policy needs no exceptions.
"use strict";

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-http deployments have no Clipboard API; fall back to a selected textarea.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy], button[data-copy-from]");
  if (!button) return;
  const text = button.dataset.copyFrom
    ? Array.from(document.querySelectorAll(button.dataset.copyFrom), (el) => el.textContent.trim()).join("\n")
    : button.dataset.copy;
  const label = button.textContent;
  try {
    await copyText(text);
    button.textContent = button.dataset.copiedLabel || "Copied";
  } catch (error) {
    button.textContent = "Copy failed";
  }
  setTimeout(() => { button.textContent = label; }, 1500);
});

document.addEventListener("htmx:configRequest", (event) => {
  const detail = event.detail;
  if (detail.elt.id !== "filters" || detail.verb !== "get") return;
  // A query string longer than the server's MAX_QUERY_STRING (customers/urlstate.py, given
  // to the form as data-max-query-string) risks proxies' and gunicorn's request-line limits;
  // the server stores such a search and answers with a short URL.
  const limit = Number(detail.elt.dataset.maxQueryString);
  if (new URLSearchParams(detail.formData).toString().length > limit) {
    detail.verb = "post";
    detail.useUrlParams = false;
    // htmx sets this header before configRequest, only for requests that start as POST;
    // without it the body goes as text/plain and Django sees an empty form.
    detail.headers["Content-Type"] = "application/x-www-form-urlencoded";
  }
});

// The customer view as a side panel over the list (templates/customers/detail.html#panel).
// It opens by an htmx request that pushes its URL, so Back closes it; Close and Escape do
// the same when the list is underneath. Without the list (the full page) Close is a link.
function panelOverList() {
  const panel = document.querySelector("aside#customer-panel");
  return panel && document.getElementById("results") ? panel : null;
}

document.addEventListener("click", (event) => {
  const close = event.target.closest("a[data-close-panel]");
  if (!close || !panelOverList()) return;
  event.preventDefault();
  history.back();
});

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && panelOverList()) history.back();
});

document.addEventListener("htmx:afterSettle", () => {
  // Move focus into a newly opened panel once, so keyboard and screen-reader users land there.
  const panel = panelOverList();
  if (panel && !panel.hasAttribute("data-focused")) {
    panel.setAttribute("data-focused", "");
    panel.focus();
  }
});

document.addEventListener("htmx:beforeSwap", (event) => {
  // New results (a search, a page) leave the customer the panel showed behind: close it
  // without touching history, which now points at the new list.
  if (event.detail.target.id !== "results") return;
  const panel = document.querySelector("aside#customer-panel");
  if (panel) {
    const slot = document.createElement("div");
    slot.id = "customer-panel";
    panel.replaceWith(slot);
  }
});

// The match report's "switch to Archived" (or Active) link swaps the results only: keep the
// filters' toggle in step with the state the results now show.
document.addEventListener("htmx:afterSwap", () => {
  const report = document.querySelector("#results .match-report[data-only-archived]");
  const state = report && report.dataset.onlyArchived;
  const radio = state && document.querySelector(`#filters input[name="only_archived"][value="${state}"]`);
  if (radio) radio.checked = true;
});
