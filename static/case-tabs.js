/* The case page's tabs (Bootstrap's tab plugin does the roles and arrow keys): the URL
 * fragment names the open tab, so #ledger opens the ledger and #contact-log opens the tab
 * holding that section and scrolls to it; choosing a tab updates the fragment (no new history
 * entry), so reloading or sharing the link comes back to the same tab. */
(function () {
  "use strict";

  function triggerFor(pane) {
    return document.querySelector('.case-tabs [data-bs-toggle="tab"][href="#' + pane.id + '"]');
  }

  function showPaneOf(element) {
    var pane = element.classList.contains("tab-pane") ? element : element.closest(".case-panes > .tab-pane");
    if (!pane || !window.bootstrap) { return null; }
    var trigger = triggerFor(pane);
    if (trigger) { window.bootstrap.Tab.getOrCreateInstance(trigger).show(); }
    return pane;
  }

  function openFragment() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (!target || !target.closest(".case-panes")) { return; }
    var pane = showPaneOf(target);
    if (target.tagName === "DETAILS") { target.open = true; }
    if (pane && target !== pane) { target.scrollIntoView({ block: "start" }); }
  }

  function init() {
    document.querySelectorAll('.case-tabs [data-bs-toggle="tab"]').forEach(function (trigger) {
      // A tab chosen by hand (click, or arrow keys then Enter) is named in the URL.
      trigger.addEventListener("click", function () {
        window.history.replaceState(null, "", trigger.getAttribute("href"));
      });
      trigger.addEventListener("shown.bs.tab", function () {
        var hash = trigger.getAttribute("href");
        var current = window.location.hash && document.getElementById(window.location.hash.slice(1));
        // Keep a deeper fragment (a section of this tab); otherwise name the tab.
        if (!current || current.closest(".tab-pane") !== document.querySelector(hash)) {
          window.history.replaceState(null, "", hash);
        }
      });
    });
    window.addEventListener("hashchange", openFragment);
    openFragment();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
