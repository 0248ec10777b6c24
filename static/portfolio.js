/* The portfolio dashboard's charts: each element with data-chart (a description written by
   portfolio/figures.py: type bar, line or heatmap; x and y labels; series with a unit) is
   drawn with ECharts (served from node_modules). The table below each chart holds the same
   figures and is the accessible alternative; the chart element is role="img" with a label.
   Tooltips are drawn on the canvas (renderMode richText): no HTML with inline styles, which
   the Content-Security-Policy would refuse. */
(function () {
  "use strict";
  if (typeof window.echarts === "undefined") { return; }
  var lang = document.documentElement.lang || "en";
  var formats = {
    money: new Intl.NumberFormat(lang, {style: "currency", currency: "CNY", notation: "compact",
                                        maximumFractionDigits: 1}),
    moneyFull: new Intl.NumberFormat(lang, {style: "currency", currency: "CNY"}),
    count: new Intl.NumberFormat(lang, {maximumFractionDigits: 0}),
    rate: new Intl.NumberFormat(lang, {style: "percent", maximumFractionDigits: 1})
  };

  function format(unit, value, full) {
    if (value === null || value === undefined || value === "-" || isNaN(value)) { return "—"; }
    if (unit === "money") { return (full ? formats.moneyFull : formats.money).format(value); }
    if (unit === "rate") { return formats.rate.format(value); }
    return formats.count.format(value);
  }

  function number(value) { return value === null ? null : Number(value); }

  function cartesian(spec, narrow) {
    var units = [];
    spec.series.forEach(function (s) { if (units.indexOf(s.unit) < 0) { units.push(s.unit); } });
    return {
      legend: {top: 0, type: "scroll"},
      grid: {left: 8, right: 8, top: 36, bottom: 8, containLabel: true},
      tooltip: {trigger: "axis", renderMode: "richText", valueFormatter: null},
      // every label shown; slanted on a phone so that they fit
      xAxis: {type: "category", data: spec.x,
              axisLabel: {interval: 0, rotate: narrow ? 40 : 0, fontSize: narrow ? 10 : 12}},
      yAxis: units.map(function (unit, i) {
        return {type: "value", position: i ? "right" : "left", splitLine: {show: i === 0},
                minInterval: unit === "count" ? 1 : 0,
                axisLabel: {formatter: function (v) { return format(unit, v); }}};
      }),
      series: spec.series.map(function (s) {
        var unit = s.unit;
        return {name: s.name, type: spec.type, yAxisIndex: units.indexOf(unit),
                data: s.data.map(number), connectNulls: false, barMaxWidth: 48,
                tooltip: {valueFormatter: function (v) { return format(unit, v, true); }}};
      })
    };
  }

  function heatmap(spec) {
    var cells = [];
    spec.matrix.forEach(function (row, y) {
      row.forEach(function (value, x) { if (value !== null) { cells.push([x, y, Number(value)]); } });
    });
    return {
      grid: {left: 8, right: 8, top: 8, bottom: 56, containLabel: true},
      tooltip: {renderMode: "richText", formatter: function (p) {
        return spec.y[p.value[1]] + " → " + spec.x[p.value[0]] + ": " + format("rate", p.value[2]);
      }},
      xAxis: {type: "category", data: spec.x, axisLabel: {interval: 0, rotate: 30}},
      yAxis: {type: "category", data: spec.y, inverse: true},
      visualMap: {min: 0, max: 1, orient: "horizontal", left: "center", bottom: 0,
                  calculable: false, itemHeight: 120, inRange: {color: ["#f7fbff", "#08306b"]},
                  formatter: function (v) { return format("rate", v); }},
      series: [{type: "heatmap", data: cells,
                label: {show: true, formatter: function (p) { return format("rate", p.value[2]); }}}]
    };
  }

  var charts = [];
  document.querySelectorAll("[data-chart]").forEach(function (element) {
    var spec = JSON.parse(element.getAttribute("data-chart"));
    var chart = window.echarts.init(element, null, {renderer: "canvas"});
    var narrow = element.clientWidth < 576;
    var option = spec.type === "heatmap" ? heatmap(spec) : cartesian(spec, narrow);
    option.aria = {enabled: false};  // the element's own label and the table describe it
    option.animation = false;
    chart.setOption(option);
    charts.push(chart);
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
}());
