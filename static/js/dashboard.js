// The dashboard's only script: copy buttons, sending long searches by POST, and what the
// results region does around a request (toggle, slow notice, focus after paging).
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
  const button = event.target.closest("button[data-copy], button[data-copy-from], button.copy, .customers td > button");
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

// A value cut short in the table (an ID, an alias) shows whole as a tooltip: set when
// pointed at or focused, so the page carries no second copy of each value.
function titleIfCut(event) {
  if (!event.target.closest) return;
  const value = event.target.closest(".customers td > a") || event.target.closest(".customers td > code");
  if (!value || value.title) return;
  // The ID's link clips its <code>; an inline <code> (an alias, a "Matched as" ID) is
  // clipped by its cell, and measures nothing itself.
  const box = value.clientWidth ? value : value.closest("td");
  if (box.scrollWidth > box.clientWidth) value.title = value.textContent;
}
document.addEventListener("mouseover", titleIfCut);
document.addEventListener("focusin", titleIfCut);

// A usage chart is one Tab stop (customers/templatetags/region_format.py): the arrow keys,
// Home and End move between its days, and the day last reached (by key or click) is where
// Tab comes back to.
document.addEventListener("focusin", (event) => {
  const bar = event.target.closest && event.target.closest(".chart .bar");
  if (!bar) return;
  for (const other of bar.parentNode.querySelectorAll(".bar")) other.tabIndex = -1;
  bar.tabIndex = 0;
});
// The day pointed at, tapped or focused, written under its chart: a tooltip needs a mouse
// and some patience, and a phone has neither.
function readOutBar(event) {
  const bar = event.target.closest && event.target.closest(".chart .bar");
  const readout = bar && bar.closest(".usage-chart").querySelector("[data-readout]");
  if (readout) readout.textContent = bar.getAttribute("aria-label");
}
document.addEventListener("mouseover", readOutBar);
document.addEventListener("focusin", readOutBar);
document.addEventListener("keydown", (event) => {
  const bar = event.target.closest && event.target.closest(".chart .bar");
  if (!bar) return;
  const bars = Array.from(bar.parentNode.querySelectorAll(".bar"));
  const at = bars.indexOf(bar);
  const to = {
    ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1,
    Home: 0, End: bars.length - 1,
  }[event.key];
  if (to === undefined || !bars[to]) return;
  event.preventDefault();
  bars[to].focus();
});

// The customer view as a side panel over the list (templates/customers/detail.html#panel).
// It opens by an htmx request that pushes its URL, so Back closes it; Close and Escape do
// the same when the list is underneath. Without the list (the full page) Close is a link.
function panelOverList() {
  const panel = document.querySelector("aside#customer-panel");
  return panel && document.getElementById("results") ? panel : null;
}

// The row a panel was opened from, and the list's URL then: closing (Close, Escape, Back)
// goes back to that URL, and instead of htmx reloading the whole page for it (its history
// cache is off, so Back would land at the top, or at the bottom), the panel is taken away
// and focus returns to that row's link, the list where it was.
let panelOpener = null;

function closePanel() {
  const panel = document.querySelector("aside#customer-panel");
  if (!panel) return;
  const slot = document.createElement("div");
  slot.id = "customer-panel";
  panel.replaceWith(slot);
}

document.addEventListener("htmx:beforeRequest", (event) => {
  const link = event.detail.elt;
  if (!event.detail.target || event.detail.target.id !== "customer-panel") return;
  const row = link.closest && link.closest("[data-customer-id]");
  if (row && !panelOverList()) {
    panelOpener = { id: row.dataset.customerId, url: location.pathname + location.search };
  }
});

// The row being opened says so until its panel comes (or fails): a slow Metronome would
// otherwise leave only the small indicator at the top, far from where the person clicked.
document.addEventListener("htmx:beforeRequest", (event) => {
  if (!event.detail.target || event.detail.target.id !== "customer-panel") return;
  for (const other of document.querySelectorAll("#results tr.opening")) other.classList.remove("opening");
  const row = event.detail.elt.closest && event.detail.elt.closest("tr[data-customer-id]");
  if (row) row.classList.add("opening");
});
document.addEventListener("htmx:afterRequest", (event) => {
  if (!event.detail.target || event.detail.target.id !== "customer-panel") return;
  for (const row of document.querySelectorAll("#results tr.opening")) row.classList.remove("opening");
});

document.addEventListener("htmx:historyCacheMiss", (event) => {
  if (!panelOpener || !panelOverList() || event.detail.path !== panelOpener.url) return;
  event.preventDefault();
  closePanel();
  const opener = panelOpener;
  panelOpener = null;
  const row = document.querySelector(`#results [data-customer-id="${CSS.escape(opener.id)}"]`);
  const link = row && row.querySelector("th a");
  if (link) link.focus({ preventScroll: true });
});

// While the panel is open over the list, Tab and Shift+Tab stay inside it.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Tab") return;
  const panel = panelOverList();
  if (!panel) return;
  const focusable = Array.from(panel.querySelectorAll(
    "a[href], button:not([disabled]), input:not([disabled]), select, textarea, summary, [tabindex]:not([tabindex='-1'])"
  )).filter((el) => el.getClientRects().length);
  if (!focusable.length) return;
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  const inside = panel.contains(document.activeElement) && document.activeElement !== panel;
  if (event.shiftKey && (!inside || document.activeElement === first)) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && (!inside || document.activeElement === last)) {
    event.preventDefault();
    first.focus();
  }
});

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
  panelOpener = null;
  closePanel();
});
// On a phone the unfiltered page opens with the pasted-ID boxes and more filters folded:
// open (as on a laptop), they push the first card to the bottom of the first screen. The
// server cannot tell a phone; the fold's summary opens them.
const openFold = document.querySelector("#filters .filters-fold[open]");
if (openFold && window.matchMedia("(max-width: 700px)").matches
    && !Array.from(openFold.querySelectorAll("textarea, input:not([type=hidden], [type=checkbox], [type=radio])")).some((field) => field.value)) {
  openFold.open = false;
}

// --- Around each request for the results region ----------------------------------------
// htmx marks the region (dim, progress bar) and disables the pager and the toggle; this adds
// what CSS cannot: say what a slow request waits for, keep the toggle true to the table, and
// after paging bring the new rows into view with focus on their count.

const SLOW_REQUEST_MS = 1000;
let slowTimer = null;
let pagingRequest = false;
// Retry (and "Show the results" of a search too long for a link) is replaced by its own
// answer: focus goes to the new rows' count, or to the new Retry if it failed again.
let retryRequest = false;

function targetsResults(detail) {
  return detail.target && detail.target.id === "results";
}

// The toggle shows what the table shows: the region says which customers it holds.
function syncToggleWithResults() {
  const results = document.getElementById("results");
  if (!results || !results.dataset.archived || results.classList.contains("htmx-request")) return;
  const radio = document.querySelector(`#filters .toggle input[value="${results.dataset.archived}"]`);
  if (radio) radio.checked = true;
}

// The control that had focus when a request for the results started: the toggle is
// disabled while it runs and a sort link is replaced by the swap, and either would leave
// focus on the body. Found again afterwards by what it is, not by the (new) element.
let focusedControl = null;

function describeFocus() {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  if (el.closest("#filters") && el.id) return `#${CSS.escape(el.id)}`;
  if (el.matches("a.sort")) return `#results thead th:nth-child(${el.closest("th").cellIndex + 1}) a.sort`;
  if (el.matches(".card-sort a")) return `#results .card-sort a[data-sort="${el.dataset.sort}"]`;
  return null;
}

function restoreFocus() {
  if (!focusedControl) return;
  const active = document.activeElement;
  const selector = focusedControl;
  focusedControl = null;
  if (active && active !== document.body && document.contains(active)) return;
  const el = document.querySelector(selector);
  if (el) el.focus({ preventScroll: true });
}

document.addEventListener("htmx:beforeRequest", (event) => {
  if (!targetsResults(event.detail)) return;
  focusedControl = describeFocus();
  pagingRequest = Boolean(event.detail.elt.closest(".paging"));
  retryRequest = Boolean(event.detail.elt.closest("#results .problem, #results [data-stale]"));
  const loading = document.getElementById("loading");
  clearTimeout(slowTimer);
  if (!loading) return;
  loading.textContent = "Loading…";
  slowTimer = setTimeout(() => { loading.textContent = "Waiting for Metronome…"; }, SLOW_REQUEST_MS);
});

document.addEventListener("htmx:afterRequest", (event) => {
  if (!targetsResults(event.detail)) return;
  clearTimeout(slowTimer);
  // A failed, aborted or replaced request leaves the old table: put the toggle back. Runs
  // after htmx has removed `htmx-request` from the region (and re-enabled the toggle).
  setTimeout(() => { syncToggleWithResults(); restoreFocus(); });
});

document.addEventListener("htmx:afterSettle", (event) => {
  if (!targetsResults(event.detail)) return;
  syncToggleWithResults();
  restoreFocus();
  const results = document.getElementById("results");
  const filters = document.querySelector("#filters .filters-fold");
  // On a phone the filters fold away once a search shows its results.
  if (filters && results.dataset.filtered === "true" && event.detail.requestConfig
      && event.detail.requestConfig.elt.id === "filters" && window.matchMedia("(max-width: 700px)").matches) {
    filters.open = false;
  }
  if (retryRequest) {
    retryRequest = false;
    const landing = document.getElementById("row-count") || results.querySelector(".problem a, [data-stale] a");
    if (landing) landing.focus({ preventScroll: true });
  }
  if (!pagingRequest) return;
  pagingRequest = false;
  results.scrollIntoView({ block: "start" });
  const count = document.getElementById("row-count");
  if (count) count.focus({ preventScroll: true });
});

// Failures that end a request without htmx:afterRequest: the old table stays, so does its toggle.
for (const name of ["htmx:sendError", "htmx:responseError", "htmx:sendAbort", "htmx:timeout"]) {
  document.addEventListener(name, () => {
    clearTimeout(slowTimer);
    setTimeout(syncToggleWithResults);
  });
}

// --- Retry on the customer view ------------------------------------------------------------
// A failed region's Retry (or the customer's own) is replaced by the answer, which would
// leave focus on the body: it lands on the region's heading when the region is back, or
// on the new Retry when it failed again. Found again by the region's id (a new element).
let retriedRegion = null;

function retryProblem(elt) {
  return elt && elt.closest ? elt.closest(".region > .problem, .customer > .problem") : null;
}

document.addEventListener("htmx:beforeRequest", (event) => {
  const problem = retryProblem(event.detail.elt);
  if (problem) retriedRegion = problem.parentElement.id;
});

// A Retry that brought nothing back (the network, our server, the panel closed) leaves
// focus where it is, and must not take it later, when something else in the region settles.
document.addEventListener("htmx:afterRequest", (event) => {
  if (!event.detail.successful && retryProblem(event.detail.elt)) retriedRegion = null;
});
for (const name of ["htmx:sendError", "htmx:responseError", "htmx:sendAbort", "htmx:timeout"]) {
  document.addEventListener(name, (event) => {
    if (retryProblem(event.detail.elt)) retriedRegion = null;
  });
}

document.addEventListener("htmx:afterSettle", (event) => {
  const region = retriedRegion && document.getElementById(retriedRegion);
  if (!region || !region.contains(event.target)) return;
  retriedRegion = null;
  const landing = region.querySelector(":scope > .problem a")
    || region.querySelector(":scope > h1, :scope > h2, :scope > .customer-head h1");
  if (!landing) return;
  if (!landing.matches("a")) landing.setAttribute("tabindex", "-1");
  landing.focus({ preventScroll: true });
});

// --- A table of chosen columns wider than its frame --------------------------------------
// It scrolls sideways inside the frame (saved-views.css, `.wide`) rather than push the page
// past the window's edge; one that fits keeps its header row at the top of the window. The
// server marks a choice of more than the standard eight columns; eight wide ones (IDs and
// long custom fields side by side) are found here, by measuring.
function markWideTables() {
  for (const table of document.querySelectorAll("table.chosen:not(.wide)")) {
    if (table.offsetWidth > table.parentElement.clientWidth + 1) table.classList.add("wide");
  }
}
document.addEventListener("DOMContentLoaded", markWideTables);
document.addEventListener("htmx:afterSettle", markWideTables);
window.addEventListener("resize", markWideTables);
