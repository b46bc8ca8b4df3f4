// The dashboard's only script: copy buttons, and sending long searches by POST.
// Loaded as a file (no inline scripts), so the Content-Security-Policy needs no exceptions.
"use strict";

// A query string longer than this risks the request-line limits of proxies and gunicorn
// (about 8 KB); the server stores such a search and answers with a short URL. Keep in step
// with MAX_QUERY_STRING in customers/forms.py.
const MAX_QUERY_STRING = 6000;

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
  const button = event.target.closest("button[data-copy], button[data-copy-from], button.copy");
  if (!button) return;
  let text;
  if (button.dataset.copyFrom) {
    text = Array.from(document.querySelectorAll(button.dataset.copyFrom), (el) => el.textContent.trim()).join("\n");
  } else if (button.dataset.copy) {
    text = button.dataset.copy;
  } else {
    // The table's copy buttons copy the <code> beside them: no second copy of each ID in the page.
    text = button.parentElement.querySelector("code").textContent;
  }
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
  if (new URLSearchParams(detail.formData).toString().length > MAX_QUERY_STRING) {
    detail.verb = "post";
    detail.useUrlParams = false;
    // htmx sets this header before configRequest, only for requests that start as POST;
    // without it the body goes as text/plain and Django sees an empty form.
    detail.headers["Content-Type"] = "application/x-www-form-urlencoded";
  }
});
