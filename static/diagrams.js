/* Process diagrams drawn with bpmn-js (NavigatedViewer), loaded only when needed.
 *
 * Case page (.dh-diagrams): each <details class="dh-instance"> fetches its diagram.json when
 * first opened and marks completed elements (dh-completed), where the case is now
 * (dh-current), the flows taken (dh-flow-taken) and a "×N" badge (dh-loop-badge) on every
 * element or flow passed more than once.
 * Heat map (#heatmap): counts of waiting cases per element (dh-heat-1…5) with a link each.
 * Zoom buttons (data-zoom="in|out|fit") act on the diagram of the block they sit in; a diagram
 * drawn while its tab was hidden is fitted again when the tab is shown.
 * Translated strings come from the page (data-strings). */
(function () {
  "use strict";

  var viewerLoading = null;

  function loadViewer(root) {
    if (window.BpmnJS) { return Promise.resolve(window.BpmnJS); }
    if (viewerLoading) { return viewerLoading; }
    (root.dataset.viewerCss || "").split(" ").filter(Boolean).forEach(function (href) {
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = href;
      document.head.appendChild(link);
    });
    viewerLoading = new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = root.dataset.viewer;
      script.onload = function () {
        if (window.BpmnJS) { resolve(window.BpmnJS); } else { reject(new Error("no BpmnJS")); }
      };
      script.onerror = function () {
        viewerLoading = null;
        reject(new Error("bpmn-js could not be loaded"));
      };
      document.head.appendChild(script);
    });
    return viewerLoading;
  }

  function strings(root) {
    try { return JSON.parse(root.dataset.strings || "{}"); } catch (e) { return {}; }
  }

  function fill(template, n) {
    return String(template || "").replace("{n}", String(n));
  }

  function boundsOf(element) {
    var xs = element.waypoints.map(function (p) { return p.x; });
    var ys = element.waypoints.map(function (p) { return p.y; });
    return { x: Math.min.apply(null, xs), y: Math.min.apply(null, ys) };
  }

  // Where an overlay goes: top right of a shape, the middle of a flow's middle segment.
  function overlayPosition(element) {
    if (!element.waypoints) { return { top: -12, right: 14 }; }
    var w = element.waypoints, i = Math.max(0, Math.floor((w.length - 1) / 2));
    var a = w[i], b = w[Math.min(i + 1, w.length - 1)], origin = boundsOf(element);
    return { left: (a.x + b.x) / 2 - origin.x - 12, top: (a.y + b.y) / 2 - origin.y - 10 };
  }

  function newViewer(BpmnJS, container) {
    return new BpmnJS({ container: container });
  }

  function fitted(viewer) {
    var canvas = viewer.get("canvas");
    canvas.resized();
    canvas.zoom("fit-viewport", "auto");
  }

  // The viewer of each drawn block (a details element or the heat map), for the zoom buttons.
  var viewers = new WeakMap();

  function zoom(button) {
    var block = button.closest(".dh-instance, #heatmap");
    var viewer = block && viewers.get(block);
    if (!viewer) { return; }
    var canvas = viewer.get("canvas"), how = button.dataset.zoom;
    if (how === "fit") { fitted(viewer); return; }
    canvas.zoom(canvas.zoom() * (how === "in" ? 1.25 : 0.8));
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-zoom]");
    if (button) { zoom(button); }
  });

  // Bootstrap's tabs: a diagram in a tab just shown gets its real size.
  document.addEventListener("shown.bs.tab", function (event) {
    var pane = document.querySelector(event.target.getAttribute("href") || event.target.dataset.bsTarget);
    if (!pane) { return; }
    pane.querySelectorAll(".dh-instance[data-state=ready]").forEach(function (block) {
      var viewer = viewers.get(block);
      if (viewer) { fitted(viewer); }
    });
  });

  // ------------------------------------------------------------ one instance's path

  function markProgress(viewer, progress, text) {
    var registry = viewer.get("elementRegistry");
    var canvas = viewer.get("canvas");
    var overlays = viewer.get("overlays");
    var visits = {};

    function marker(id, cls) {
      if (registry.get(id)) { canvas.addMarker(id, cls); return true; }
      return false;
    }
    function badge(id, n) {
      var element = registry.get(id);
      if (!element) { return; }
      var span = document.createElement("span");
      span.className = "dh-loop-badge";
      span.textContent = "\u00d7" + n;
      span.title = fill(text.passed, n);
      overlays.add(id, "dh-loop", { position: overlayPosition(element), html: span });
    }

    Object.keys(progress.completed || {}).forEach(function (id) {
      visits[id] = (visits[id] || 0) + progress.completed[id];
      marker(id, "dh-completed");
    });
    (progress.current || []).forEach(function (id) {
      visits[id] = (visits[id] || 0) + 1;
      if (marker(id, "dh-current") && text.current) {
        // for screen readers: where the case is now
        canvas.getGraphics(registry.get(id)).setAttribute("aria-label", text.current);
      }
    });
    (progress.errors || []).forEach(function (id) { marker(id, "dh-error"); });
    Object.keys(progress.flows || {}).forEach(function (id) {
      var n = progress.flows[id];
      marker(id, "dh-flow-taken");
      if (n > 1) { badge(id, n); }
    });
    Object.keys(visits).forEach(function (id) {
      var element = registry.get(id);
      if (visits[id] > 1 && element && !element.waypoints) { badge(id, visits[id]); }
    });
  }

  function showInstance(details, root, text) {
    if (details.dataset.state === "loading" || details.dataset.state === "ready") { return; }
    details.dataset.state = "loading";
    var message = details.querySelector(".dh-message");
    var container = details.querySelector(".dh-canvas");
    message.textContent = text.loading || "";
    var data = fetch(details.dataset.url, {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    });
    Promise.all([loadViewer(root), data]).then(function (results) {
      var viewer = newViewer(results[0], container), payload = results[1];
      viewers.set(details, viewer);
      return viewer.importXML(payload.xml).then(function () {
        markProgress(viewer, payload.progress || {}, text);
        fitted(viewer);
        message.textContent = "";
        details.dataset.state = "ready";
      });
    }).catch(function () {
      container.innerHTML = "";
      details.dataset.state = "failed";
      message.textContent = text.failed || "";
    });
  }

  function initCase(root) {
    var text = strings(root);
    root.querySelectorAll("details.dh-instance").forEach(function (details) {
      details.addEventListener("toggle", function () {
        if (details.open) { showInstance(details, root, text); }
      });
      if (details.open) { showInstance(details, root, text); }
    });
    // Opened from a link to one instance (#process-instance-N).
    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    if (target && target.classList.contains("dh-instance")) { target.open = true; }
  }

  // ------------------------------------------------------------ heat map

  function initHeatmap(root) {
    var text = strings(root);
    var source = document.getElementById("heatmap-data");
    var message = root.querySelector(".dh-message");
    var data = JSON.parse(source.textContent);
    var counts = data.counts || {};
    var max = Math.max.apply(null, [1].concat(Object.keys(counts).map(function (k) {
      return counts[k];
    })));
    message.textContent = text.loading || "";
    loadViewer(root).then(function (BpmnJS) {
      var viewer = newViewer(BpmnJS, root.querySelector(".dh-canvas"));
      viewers.set(root, viewer);
      return viewer.importXML(data.xml).then(function () {
        var registry = viewer.get("elementRegistry");
        var canvas = viewer.get("canvas");
        var overlays = viewer.get("overlays");
        Object.keys(counts).forEach(function (id) {
          var element = registry.get(id), n = counts[id];
          if (!element || !n) { return; }
          var level = Math.max(1, Math.min(5, Math.ceil((n / max) * 5)));
          canvas.addMarker(id, "dh-heat");
          canvas.addMarker(id, "dh-heat-" + level);
          var link = document.createElement("a");
          link.className = "dh-count dh-count-" + level;
          link.href = root.dataset.waitingUrl.replace("__ID__", encodeURIComponent(id));
          link.textContent = String(n);
          link.title = fill(text.cases, n);
          overlays.add(id, "dh-count", { position: overlayPosition(element), html: link });
        });
        fitted(viewer);
        message.textContent = "";
        root.dataset.state = "ready";
      });
    }).catch(function () {
      root.dataset.state = "failed";
      message.textContent = text.failed || "";
    });
  }

  function init() {
    document.querySelectorAll(".dh-diagrams").forEach(initCase);
    var heat = document.getElementById("heatmap");
    if (heat) { initHeatmap(heat); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
