/* Process studio: replay a draft against past cases before deploying (studio/replay.py).
 * Posts the modeler's current diagram (window.studioModeler, set by studio.js) and, when
 * studio.js exposes them as window.studioForms, the forms being edited (otherwise the draft's
 * saved forms are used); shows the counts and one row per case with where it diverges. */
(function () {
  "use strict";
  var section = document.getElementById("studio-replay");
  if (!section) { return; }
  var root = document.getElementById("studio");
  var S = JSON.parse(document.getElementById("studio-replay-strings").textContent);
  function $(id) { return document.getElementById(id); }
  function fmt(text, params) {
    return text.replace(/%\((\w+)\)s/g, function (_m, k) { return params[k]; });
  }
  function cell(row, text, node) {
    var td = document.createElement("td");
    if (node) { td.appendChild(node); } else { td.textContent = text; }
    row.appendChild(td);
    return td;
  }
  function status(text, kind) {
    var s = $("studio-replay-status");
    s.textContent = text;
    s.className = "studio-status" + (kind ? " " + kind : "");
  }
  function show(id, text) {
    var node = $(id);
    node.hidden = !text;
    node.textContent = text || "";
  }

  function render(answer) {
    show("studio-replay-summary", answer.total ? answer.summary : S.none);
    show("studio-replay-note", answer.note);
    var body = $("studio-replay-cases").querySelector("tbody");
    body.textContent = "";
    answer.cases.forEach(function (c) {
      var tr = document.createElement("tr");
      tr.className = "replay-" + c.outcome;
      var link = null;
      if (c.case_url) {
        link = document.createElement("a");
        link.href = c.case_url;
        link.textContent = c.loan_no;
      }
      cell(tr, c.loan_no || "#" + c.instance_id, link);
      cell(tr, "v" + c.version);
      cell(tr, c.status);
      cell(tr, c.outcome_label);
      body.appendChild(tr);
      // Where it differs: a row of its own under the case, readable on a phone too.
      if (c.reason || c.live_services.length) {
        tr.className += " replay-has-why";
        var more = document.createElement("tr");
        more.className = "replay-why-row replay-why-" + c.outcome;
        var why = cell(more, c.reason);
        why.colSpan = 4;
        why.className = "replay-why";
        if (c.live_services.length) {
          var small = document.createElement("div");
          small.className = "muted";
          small.textContent = fmt(S.live, { steps: c.live_services.join(", ") });
          why.appendChild(small);
        }
        body.appendChild(more);
      }
    });
    $("studio-replay-result").hidden = !answer.cases.length;
  }

  function problems(list) {
    var text = S.problems + " " + list.map(function (p) {
      return (p.element_id ? p.element_id + ": " : "") + p.message;
    }).join("; ");
    show("studio-replay-summary", text);
  }

  $("studio-replay-run").addEventListener("click", function () {
    var button = this;
    var modeler = window.studioModeler;
    if (!modeler) { return; }
    button.disabled = true;
    status(S.running, "muted");
    modeler.saveXML({ format: true }).then(function (r) {
      var body = { xml: r.xml, completed: $("studio-replay-completed").value || "0" };
      if (window.studioForms) { body.forms = window.studioForms; }
      return fetch(section.getAttribute("data-url"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json",
                   "X-CSRFToken": root.getAttribute("data-csrf") },
        body: JSON.stringify(body)
      });
    }).then(function (response) {
      return response.json().catch(function () {
        return { ok: false, error: response.status + " " + response.statusText };
      });
    }).then(function (answer) {
      button.disabled = false;
      if (answer.ok) {
        if (!window.studioForms) {
          answer.note = answer.note ? answer.note + " " + S.forms_saved : S.forms_saved;
        }
        render(answer);
        status(S.done, "muted");
      } else if (answer.problems && answer.problems.length) {
        problems(answer.problems);
        $("studio-replay-result").hidden = true;
        status("");
      } else {
        status(fmt(S.failed, { error: answer.error }), "bad");
      }
    }).catch(function (err) {
      button.disabled = false;
      status(fmt(S.failed, { error: err && err.message || err }), "bad");
    });
  });
}());
