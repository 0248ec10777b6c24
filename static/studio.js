/* Process studio editor: bpmn-js Modeler, a side panel for the properties Daihou understands,
 * the form-spec editor with a bilingual live preview, save / validate / deploy.
 * Plain script, no bundler; bpmn-modeler.production.min.js defines the global BpmnJS.
 *
 * Spiff extension elements (spiffworkflow:properties, serviceTaskOperator, messageVariable, …)
 * are kept as bpmn-moddle "any" elements: no descriptor is registered for their namespace,
 * because a partial descriptor makes moddle drop every element of that namespace it does not
 * describe. New ones are made with moddle.createAny and serialise unchanged. */
(function () {
  "use strict";
  var NS = "http://spiffworkflow.org/bpmn/schema/1.0/core";
  var TASK_PROPS = ["formKey", "dueInWorkingDays", "priority", "notSameUserAs",
                    "candidateUserVariable", "notUserVariable"];
  var TIMER_KINDS = ["timeDate", "timeDuration", "timeCycle"];

  var root = document.getElementById("studio");
  var config = JSON.parse(document.getElementById("studio-config").textContent);
  var S = config.strings;
  var csrf = root.getAttribute("data-csrf");
  var forms = JSON.parse(JSON.stringify(config.forms || {}));
  window.studioForms = forms;  // the replay section sends the unsaved form edits too
  var dirty = false;
  // What the last check found, by kind: the markers on the canvas and the lists.
  var found = { problems: [], warnings: [] };
  var markers = { "has-problem": [], "has-warning": [] };

  var modeler = new BpmnJS({ container: "#studio-canvas" });
  var moddle = modeler.get("moddle");
  var modeling = modeler.get("modeling");
  var registry = modeler.get("elementRegistry");
  var canvas = modeler.get("canvas");
  var selection = modeler.get("selection");
  window.studioModeler = modeler;  // for debugging and the browser test

  function $(id) { return document.getElementById(id); }
  function fmt(text, params) {
    return text.replace(/%\((\w+)\)s/g, function (_m, k) { return params[k]; });
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; }
      else if (k.indexOf("on") === 0) { node.addEventListener(k.slice(2), attrs[k]); }
      else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }
  function status(text, kind) {
    var s = $("studio-status");
    s.textContent = text;
    s.className = "studio-status" + (kind ? " " + kind : "");
  }
  function setDirty(value) {
    dirty = value;
    root.classList.toggle("is-dirty", value);
    if (value) { status(S.unsaved, "muted"); }
  }
  window.addEventListener("beforeunload", function (e) {
    if (dirty) { e.preventDefault(); e.returnValue = ""; }
  });

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf,
                 "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false, error: r.status + " " + r.statusText }; });
    });
  }

  /* ---- Spiff properties on a business object ---------------------------------------------- */
  function propsElement(bo) {
    var ext = bo.extensionElements;
    return ext && (ext.values || []).filter(function (v) {
      return v.$type === "spiffworkflow:properties";
    })[0];
  }
  function readProps(bo) {
    var found = {};
    var p = propsElement(bo);
    ((p && p.$children) || []).forEach(function (c) {
      if (c.$type === "spiffworkflow:property" && c.name) { found[c.name] = c.value || ""; }
    });
    return found;
  }
  // `target` is the business object to change when it is not the element's own (the
  // process of a pool).
  function writeProp(element, name, value, target) {
    var bo = target || element.businessObject;
    var ext = bo.extensionElements;
    var p = propsElement(bo);
    value = (value || "").trim();
    if (!p && !value) { return; }
    if (!ext) {
      ext = moddle.create("bpmn:ExtensionElements", { values: [] });
      ext.$parent = bo;
    }
    if (!p) {
      p = moddle.createAny("spiffworkflow:properties", NS, { $children: [] });
      p.$parent = ext;
      ext.values = (ext.values || []).concat([p]);
    }
    p.$children = p.$children || [];
    var existing = p.$children.filter(function (c) {
      return c.$type === "spiffworkflow:property" && c.name === name;
    })[0];
    if (value && existing) {
      existing.value = value;
    } else if (value) {
      var prop = moddle.createAny("spiffworkflow:property", NS, { name: name, value: value });
      prop.$parent = p;
      p.$children.push(prop);
    } else if (existing) {
      p.$children.splice(p.$children.indexOf(existing), 1);
    }
    if (!p.$children.length) {
      ext.values = ext.values.filter(function (v) { return v !== p; });
    }
    modeling.updateModdleProperties(element, bo, {
      extensionElements: ext.values.length ? ext : undefined
    });
  }
  function timerDefinition(bo) {
    return (bo.eventDefinitions || []).filter(function (d) {
      return d.$type === "bpmn:TimerEventDefinition";
    })[0];
  }

  /* ---- side panel ------------------------------------------------------------------------- */
  function field(label, input, id) {
    input.id = id;
    return el("div", { "class": "field" }, [el("label", { "for": id, text: label }), input]);
  }
  function textInput(value, onchange, type) {
    var input = el("input", { type: type || "text" });
    input.value = value || "";
    input.addEventListener("change", function () { onchange(input.value); });
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); onchange(input.value); }
    });
    return input;
  }
  function select(options, value, onchange) {
    var s = el("select");
    options.forEach(function (o) {
      var opt = el("option", { value: o[0], text: o[1] });
      if (o[0] === value) { opt.selected = true; }
      s.appendChild(opt);
    });
    s.addEventListener("change", function () { onchange(s.value); });
    return s;
  }

  function formKeyOptions(current) {
    var keys = {};
    Object.keys(config.knownForms || {}).forEach(function (k) { keys[k] = true; });
    Object.keys(forms).forEach(function (k) { keys[k] = true; });
    if (current) { keys[current] = true; }
    return [["", S.none]].concat(Object.keys(keys).sort().map(function (k) {
      return [k, forms[k] ? k + " ✎" : k];
    }));
  }

  // The Chinese name of an element (workflows/labels.py): the BPMN name is the English one.
  var ZH_NAME = "name_zh_CN";
  var BLOCK = "warningsBlockDeploy";
  function processNames(body, element, process) {
    body.appendChild(field(S.process_name, textInput(process.name, function (v) {
      modeling.updateModdleProperties(element, process, { name: v.trim() || undefined });
    }), "prop-process-name"));
    body.appendChild(field(S.process_name_zh, textInput(readProps(process)[ZH_NAME], function (v) {
      writeProp(element, ZH_NAME, v, process);
    }), "prop-process-name_zh_CN"));
    // The process owner's choice, kept in the diagram (workflows/hygiene.py).
    var id = "prop-warningsBlockDeploy-" + process.id;
    var box = el("input", { type: "checkbox", id: id, "aria-describedby": id + "-help" });
    box.checked = (readProps(process)[BLOCK] || "").toLowerCase() === "true";
    box.addEventListener("change", function () {
      writeProp(element, BLOCK, box.checked ? "true" : "", process);
    });
    body.appendChild(el("div", { "class": "field studio-check" }, [
      box, el("label", { "for": id, text: S.warnings_block_deploy }),
      el("div", { "class": "muted studio-help", id: id + "-help",
                  text: S.warnings_block_deploy_help })]));
  }

  // This element's problems and warnings from the last check, at the top of its panel.
  function elementFindings(body, element) {
    var pool = element.businessObject.processRef;
    [["problems", S.element_problems, "studio-panel-problems"],
     ["warnings", S.element_warnings, "studio-panel-warnings"]].forEach(function (kind) {
      var mine = found[kind[0]].filter(function (p) {
        return p.element_id && (p.element_id === element.id || (pool && p.element_id === pool.id));
      });
      if (!mine.length) { return; }
      var list = el("ul");
      mine.forEach(function (p) { var item = el("li"); describe(item, p, false); list.appendChild(item); });
      body.appendChild(el("div", { "class": kind[2], role: "group", "aria-label": kind[1] },
                          [el("strong", { text: kind[1] }), list]));
    });
  }

  function renderPanel(element) {
    var body = $("studio-panel-body");
    body.innerHTML = "";
    if (!element) {
      body.appendChild(el("p", { "class": "muted", text: S.nothing_selected }));
      var top = canvas.getRootElement();
      var topBo = top && top.businessObject;
      if (topBo && topBo.$type === "bpmn:Process") { processNames(body, top, topBo); }
      (topBo && topBo.participants || []).forEach(function (pool) {
        var shape = registry.get(pool.id);
        if (shape && pool.processRef) { processNames(body, shape, pool.processRef); }
      });
      return;
    }
    var bo = element.businessObject;
    elementFindings(body, element);
    body.appendChild(el("dl", { "class": "studio-ident" }, [
      el("dt", { text: S.id }), el("dd", { text: bo.id }),
      el("dt", { text: S.type }), el("dd", { text: bo.$type.replace("bpmn:", "") })
    ]));
    if (bo.$type === "bpmn:Lane") {
      var roles = Object.keys(config.roles).map(function (k) {
        return [k, k + " · " + config.roles[k]];
      });
      if (bo.name && !config.roles[bo.name]) {
        roles.unshift([bo.name, fmt(S.unknown_role, { name: bo.name })]);
      }
      if (!bo.name) { roles.unshift(["", S.none]); }
      body.appendChild(field(S.lane_role, select(roles, bo.name || "", function (v) {
        modeling.updateLabel(element, v);
      }), "prop-lane"));
      return;
    }
    if (element.type !== "label") {
      body.appendChild(field(S.name, textInput(bo.name, function (v) {
        modeling.updateLabel(element, v);
      }), "prop-name"));
      if (bo.$type === "bpmn:Participant") {
        if (bo.processRef) { processNames(body, element, bo.processRef); }
      } else {
        body.appendChild(field(S.name_zh, textInput(readProps(bo)[ZH_NAME], function (v) {
          writeProp(element, ZH_NAME, v);
        }), "prop-name_zh_CN"));
      }
    }
    if (bo.$type === "bpmn:UserTask") {
      var props = readProps(bo);
      var formSelect = select(formKeyOptions(props.formKey), props.formKey || "", function (v) {
        writeProp(element, "formKey", v);
        renderPanel(element);
      });
      body.appendChild(field(S.form_key, formSelect, "prop-formKey"));
      if (props.formKey) {
        body.appendChild(el("button", { type: "button", text: S.edit_form, onclick: function () {
          openForm(props.formKey);
          $("studio-forms").scrollIntoView({ behavior: "smooth" });
        } }));
      }
      body.appendChild(field(S.due, textInput(props.dueInWorkingDays, function (v) {
        writeProp(element, "dueInWorkingDays", v);
      }, "number"), "prop-dueInWorkingDays"));
      body.appendChild(field(S.priority, select(
        [["", S.none], ["high", S.high], ["normal", S.normal], ["low", S.low]],
        props.priority || "", function (v) { writeProp(element, "priority", v); }),
        "prop-priority"));
      body.appendChild(field(S.not_same_user_as, textInput(props.notSameUserAs, function (v) {
        writeProp(element, "notSameUserAs", v.split(",").map(function (s) {
          return s.trim();
        }).filter(Boolean).join(","));
      }), "prop-notSameUserAs"));
      body.appendChild(field(S.candidate_user_variable, textInput(props.candidateUserVariable,
        function (v) { writeProp(element, "candidateUserVariable", v); }),
        "prop-candidateUserVariable"));
      body.appendChild(field(S.not_user_variable, textInput(props.notUserVariable, function (v) {
        writeProp(element, "notUserVariable", v);
      }), "prop-notUserVariable"));
    }
    var timer = timerDefinition(bo);
    if (timer) {
      var kind = TIMER_KINDS.filter(function (k) { return timer[k]; })[0] || "timeDuration";
      var current = timer[kind] ? timer[kind].body : "";
      var labels = { timeDate: S.time_date, timeDuration: S.time_duration, timeCycle: S.time_cycle };
      var kindSelect, exprInput;
      var apply = function () {
        var update = { timeDate: undefined, timeDuration: undefined, timeCycle: undefined };
        if (exprInput.value.trim()) {
          update[kindSelect.value] = moddle.create("bpmn:FormalExpression",
                                                   { body: exprInput.value.trim() });
        }
        modeling.updateModdleProperties(element, timer, update);
      };
      kindSelect = select(TIMER_KINDS.map(function (k) { return [k, labels[k]]; }), kind, apply);
      exprInput = textInput(current, apply);
      body.appendChild(field(S.timer_kind, kindSelect, "prop-timerKind"));
      body.appendChild(field(S.timer_expression, exprInput, "prop-timerExpression"));
    }
    if (bo.$type === "bpmn:SequenceFlow" && bo.sourceRef &&
        /Gateway$/.test(bo.sourceRef.$type) && bo.sourceRef.default !== bo) {
      // The condition a gateway tests on this path (a Python expression on the task data),
      // e.g. the litigation threshold of the collection process.
      var condition = bo.conditionExpression ? bo.conditionExpression.body || "" : "";
      body.appendChild(field(S.condition, textInput(condition, function (v) {
        modeling.updateProperties(element, { conditionExpression: v.trim() ?
          moddle.create("bpmn:FormalExpression", { body: v.trim() }) : undefined });
      }), "prop-condition"));
      body.appendChild(el("p", { "class": "muted", text: S.condition_help }));
    }
  }

  modeler.on("selection.changed", function (e) {
    renderPanel(e.newSelection.length === 1 ? e.newSelection[0] : null);
  });
  modeler.on("commandStack.changed", function () { setDirty(true); });
  modeler.on("element.changed", function (e) {
    var selected = selection.get();
    // Keep the panel in step with undo/redo and canvas edits, but not while typing in it.
    if (selected.length === 1 && selected[0] === e.element &&
        !$("studio-panel").contains(document.activeElement)) {
      renderPanel(e.element);
    }
  });

  /* ---- problems and warnings ----------------------------------------------------------- */
  // The shape a problem or warning belongs on: its element, or the pool of its process.
  function targetOf(p) {
    return p.element_id && (registry.get(p.element_id) || registry.filter(function (e) {
      return e.businessObject.processRef && e.businessObject.processRef.id === p.element_id;
    })[0]);
  }

  // Marks each item's element on the canvas with `marker` and lists the items; clicking an
  // item (or Enter / Space on it) selects its element.
  function showFindings(items, marker, listId, sectionId, itemClass, withCode) {
    markers[marker].forEach(function (id) {
      if (registry.get(id)) { canvas.removeMarker(id, marker); }
    });
    markers[marker] = [];
    var list = $(listId);
    list.innerHTML = "";
    $(sectionId).hidden = !items.length;
    items.forEach(function (p) {
      var item = el("li", { "class": itemClass });
      var target = targetOf(p);
      describe(item, p, withCode);
      if (target) {
        if (markers[marker].indexOf(target.id) < 0) {
          canvas.addMarker(target.id, marker);
          markers[marker].push(target.id);
        }
        leadTo(item, target);
      }
      list.appendChild(item);
    });
  }
  function showProblems(problems) {
    found.problems = problems;
    showFindings(problems, "has-problem", "studio-problem-list", "studio-problems",
                 "studio-problem", true);
    refreshPanel();
  }
  function showWarnings(warnings) {
    found.warnings = warnings;
    showFindings(warnings, "has-warning", "studio-warning-list", "studio-warnings",
                 "studio-warning", false);
    refreshPanel();
  }
  function refreshPanel() {
    var selected = selection.get();
    if (selected.length === 1 && !$("studio-panel").contains(document.activeElement)) {
      renderPanel(selected[0]);
    }
  }

  // A problem's or warning's element id, title, message (and code) and hint in its list item.
  function describe(item, p, withCode) {
    if (p.element_id) {
      item.setAttribute("data-element-id", p.element_id);
      item.appendChild(el("code", { text: p.element_id }));
      item.appendChild(document.createTextNode(" "));
    }
    if (p.title) { item.appendChild(el("strong", { text: p.title + ": " })); }
    item.appendChild(document.createTextNode(p.message));
    if (withCode && p.code && !p.title) { item.appendChild(el("small", { "class": "muted", text: " [" + p.code + "]" })); }
    if (p.hint) { item.appendChild(el("div", { "class": "muted", text: p.hint })); }
  }

  // Clicking the item (or Enter on it) selects its element on the diagram and scrolls to it.
  function leadTo(item, target) {
    item.classList.add("clickable");
    item.tabIndex = 0;
    var go = function () { selection.select(target); canvas.scrollToElement(target); };
    item.addEventListener("click", go);
    item.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); }
    });
  }

  function currentXml() {
    return modeler.saveXML({ format: true }).then(function (r) { return r.xml; });
  }
  function busy(on) {
    ["studio-save", "studio-validate", "studio-deploy"].forEach(function (id) { $(id).disabled = on; });
  }
  function failed(err) {
    busy(false);
    status(fmt(S.failed, { error: err && err.message || err }), "bad");
  }

  $("studio-save").addEventListener("click", function () {
    busy(true); status(S.saving);
    currentXml().then(function (xml) {
      return post(config.urls.save, { xml: xml, forms: forms });
    }).then(function (r) {
      busy(false);
      if (!r.ok) { return status(fmt(S.failed, { error: r.error }), "bad"); }
      setDirty(false);
      showProblems(r.problems || []);
      showWarnings(r.warnings || []);
      status(S.saved + " " + (r.problems.length ? "" : S.no_problems), "good");
    }).catch(failed);
  });

  $("studio-validate").addEventListener("click", function () {
    busy(true); status(S.validating);
    currentXml().then(function (xml) {
      return post(config.urls.validate, { xml: xml, forms: forms });
    }).then(function (r) {
      busy(false);
      if (!r.problems) { return status(fmt(S.failed, { error: r.error }), "bad"); }
      showProblems(r.problems);
      showWarnings(r.warnings || []);
      status(r.problems.length ? S.problems + ": " + r.problems.length : S.no_problems,
             r.problems.length ? "bad" : "good");
    }).catch(failed);
  });

  $("studio-deploy").addEventListener("click", function () {
    var comment = $("studio-comment").value.trim();
    if (!comment) {
      status(S.comment_required, "bad");
      $("studio-comment").focus();
      return;
    }
    busy(true); status(S.deploying);
    currentXml().then(function (xml) {
      return post(config.urls.deploy, { xml: xml, forms: forms, comment: comment });
    }).then(function (r) {
      busy(false);
      showProblems(r.problems || []);
      if (!r.ok) { return status(r.error || S.deploy_refused, "bad"); }
      setDirty(false);
      var done = $("studio-status");
      status(fmt(S.deployed, { version: r.version }) + " ", "good");
      done.appendChild(el("a", { href: r.edit_url, text: "›" }));
      root.classList.add("is-deployed");
    }).catch(failed);
  });

  /* ---- forms ------------------------------------------------------------------------------ */
  var currentForm = null;
  var previewTimer = null;

  /* The database hands specs back with sorted keys; show them in the order people write them. */
  var SPEC_ORDER = ["key", "title", "instructions", "show", "show_data", "fields"];
  var FIELD_ORDER = ["name", "type", "required", "required_if", "not_past", "label", "help",
                     "min", "max", "max_length", "choices"];
  function reorder(obj, order) {
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) { return obj; }
    var out = {};
    order.forEach(function (k) { if (k in obj) { out[k] = obj[k]; } });
    Object.keys(obj).forEach(function (k) { if (!(k in out)) { out[k] = obj[k]; } });
    return out;
  }
  function tidy(spec) {
    spec = reorder(spec, SPEC_ORDER);
    if (spec && Array.isArray(spec.fields)) {
      spec.fields = spec.fields.map(function (f) {
        f = reorder(f, FIELD_ORDER);
        if (f && Array.isArray(f.choices)) {
          f.choices = f.choices.map(function (c) { return reorder(c, ["value", "label"]); });
        }
        return f;
      });
    }
    return spec;
  }

  function fillFormSelect() {
    var s = $("studio-form-key");
    s.innerHTML = "";
    Object.keys(forms).sort().forEach(function (k) {
      var opt = el("option", { value: k, text: k });
      if (k === currentForm) { opt.selected = true; }
      s.appendChild(opt);
    });
  }
  function openForm(key) {
    if (!forms[key]) {
      forms[key] = JSON.parse(JSON.stringify((config.knownForms || {})[key] || {
        key: key, title: { en: key, zh_CN: key },
        fields: [{ name: "note", type: "textarea", label: { en: "Note", zh_CN: "备注" } }]
      }));
      setDirty(true);
    }
    currentForm = key;
    fillFormSelect();
    $("studio-form-json").value = JSON.stringify(tidy(forms[key]), null, 2);
    renderFieldList();
    schedulePreview(0);
  }
  /* The field list: the common settings of each field; choices and the rest in the JSON. */
  var FIELD_TYPES = ["text", "textarea", "integer", "decimal", "date", "boolean", "select",
                     "multiselect", "photos", "location"];
  function formChanged(renderList) {
    $("studio-form-json").value = JSON.stringify(tidy(forms[currentForm]), null, 2);
    if (renderList) { renderFieldList(); }
    setDirty(true);
    schedulePreview();
  }
  function langInput(holder, prop, lang, label, cls) {
    var value = holder[prop];
    var input = el("input", { type: "text", "aria-label": label, placeholder: label,
                              "class": cls || "" });
    input.value = value && typeof value === "object" ? (value[lang] || "") :
      (lang === "en" && typeof value === "string" ? value : "");
    input.addEventListener("input", function () {
      var current = holder[prop];
      if (!current || typeof current !== "object") {
        current = typeof current === "string" && current ? { en: current } : {};
      }
      current[lang] = input.value;
      holder[prop] = current;
      formChanged(false);
    });
    return input;
  }
  function renderFieldList() {
    var box = $("studio-field-list");
    box.innerHTML = "";
    var spec = forms[currentForm];
    if (!spec || typeof spec !== "object" || !Array.isArray(spec.fields)) { return; }
    box.appendChild(el("div", { "class": "studio-form-title" }, [
      langInput(spec, "title", "en", S.title_en, "form-title-en"),
      langInput(spec, "title", "zh_CN", S.title_zh, "form-title-zh")
    ]));
    var table = el("table", { "class": "list studio-fields" });
    table.appendChild(el("thead", {}, [el("tr", {}, [
      el("th", { text: S.field_name }), el("th", { text: S.field_type }),
      el("th", { text: S.required }), el("th", { text: S.label_en }),
      el("th", { text: S.label_zh }), el("th")])]));
    var tbody = el("tbody");
    spec.fields.forEach(function (f, i) {
      if (!f || typeof f !== "object") { return; }
      var name = el("input", { type: "text", "class": "field-name", "aria-label": S.field_name });
      name.value = f.name || "";
      name.addEventListener("input", function () { f.name = name.value.trim(); formChanged(false); });
      var type = select(FIELD_TYPES.map(function (t) { return [t, t]; }), f.type, function (v) {
        f.type = v;
        if ((v === "select" || v === "multiselect") && !f.choices) {
          f.choices = [{ value: "yes", label: { en: "Yes", zh_CN: "是" } },
                       { value: "no", label: { en: "No", zh_CN: "否" } }];
        }
        formChanged(false);
      });
      type.setAttribute("aria-label", S.field_type);
      var req = el("input", { type: "checkbox", "aria-label": S.required });
      req.checked = !!f.required;
      req.addEventListener("change", function () { f.required = req.checked; formChanged(false); });
      var actions = el("td", { "class": "nowrap" }, [
        i > 0 ? el("button", { type: "button", title: S.move_up, text: "↑", onclick: function () {
          spec.fields.splice(i - 1, 0, spec.fields.splice(i, 1)[0]);
          formChanged(true);
        } }) : null,
        el("button", { type: "button", title: S.remove, text: "×", onclick: function () {
          spec.fields.splice(i, 1);
          formChanged(true);
        } })
      ]);
      tbody.appendChild(el("tr", { "data-field": f.name || "" }, [
        el("td", {}, [name]), el("td", {}, [type]), el("td", {}, [req]),
        el("td", {}, [langInput(f, "label", "en", S.label_en)]),
        el("td", {}, [langInput(f, "label", "zh_CN", S.label_zh)]), actions]));
    });
    table.appendChild(tbody);
    box.appendChild(table);
    box.appendChild(el("button", { type: "button", id: "studio-field-add", text: S.add_field,
      onclick: function () {
        var n = spec.fields.length + 1;
        var names = spec.fields.map(function (f) { return f && f.name; });
        while (names.indexOf("field_" + n) >= 0) { n += 1; }
        spec.fields.push({ name: "field_" + n, type: "text", required: false,
                           label: { en: "", zh_CN: "" } });
        formChanged(true);
      } }));
  }

  function schedulePreview(delay) {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(preview, delay === undefined ? 400 : delay);
  }
  function showFormProblems(problems) {
    var list = $("studio-form-problems");
    list.innerHTML = "";
    (problems || []).forEach(function (p) { list.appendChild(el("li", { text: p })); });
  }
  function preview() {
    if (!currentForm) { return; }
    var spec = forms[currentForm];
    post(config.urls.preview, { spec: spec }).then(function (r) {
      showFormProblems(r.problems || (r.ok ? [] : [r.error]));
      ["zh_CN", "en"].forEach(function (loc) {
        if (r.html && r.html[loc] !== undefined) { $("studio-preview-" + loc).innerHTML = r.html[loc]; }
      });
    }).catch(function (err) { showFormProblems([String(err)]); });
  }
  $("studio-form-key").addEventListener("change", function (e) { openForm(e.target.value); });
  $("studio-form-json").addEventListener("input", function (e) {
    if (!currentForm) { return; }
    var spec;
    try {
      spec = JSON.parse(e.target.value);
    } catch (err) {
      showFormProblems([fmt(S.invalid_json, { error: err.message })]);
      return;
    }
    forms[currentForm] = spec;
    renderFieldList();
    setDirty(true);
    schedulePreview();
  });
  $("studio-form-new").addEventListener("click", function () {
    var key = (window.prompt(S.new_form_key) || "").trim();
    if (!key) { return; }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || forms[key]) {
      window.alert(S.bad_form_key);
      return;
    }
    openForm(key);
  });

  /* ---- start ------------------------------------------------------------------------------ */
  modeler.importXML(config.xml).then(function (result) {
    if (result.warnings && result.warnings.length) {
      showProblems(result.warnings.map(function (w) {
        return { element_id: null, message: S.import_warnings + ": " + w.message };
      }));
    }
    canvas.zoom("fit-viewport");
    renderPanel(null);
    if (!(result.warnings && result.warnings.length)) { showProblems(config.blocking || []); }
    showWarnings(config.warnings || []);
    setDirty(false);
    status("");
    var keys = Object.keys(forms).sort();
    if (keys.length) { openForm(keys[0]); } else { fillFormSelect(); }
    root.classList.add("is-ready");
  }).catch(function (err) {
    status(fmt(S.import_failed, { error: err.message }), "bad");
  });
})();
