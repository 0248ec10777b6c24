/* Field work on a phone (issue 13 item 9), for task forms with a photos or location field.
   Location: nothing is asked before the consent box is ticked; then the browser's
   geolocation fills the hidden latitude/longitude/accuracy/captured_at inputs. Unticking
   empties them (the server also drops them without consent).
   Photos: the chosen pictures are listed; large ones are redrawn at most 2560 px wide as JPEG
   (a phone photo of 4-8 MB becomes well under 1 MB, so several fit in one submission, and
   the camera's metadata, GPS position included, is not sent). */
(function () {
  "use strict";

  function setupLocation(box) {
    var id = box.getAttribute("data-location");
    var consent = document.getElementById(id + "-consent");
    var button = document.getElementById(id + "-button");
    var status = document.getElementById(id + "-status");
    var parts = ["latitude", "longitude", "accuracy", "captured_at"];
    function input(part) { return document.getElementById(id + "-" + part); }
    function clear() { parts.forEach(function (p) { input(p).value = ""; }); }
    function say(key) { status.textContent = status.getAttribute("data-" + key) || ""; }

    function ask() {
      if (!consent.checked) { return; }
      if (!("geolocation" in navigator)) { say("unsupported"); return; }
      say("waiting");
      button.disabled = true;
      navigator.geolocation.getCurrentPosition(function (pos) {
        if (!consent.checked) { return; }  // unticked while waiting: keep nothing
        var c = pos.coords;
        input("latitude").value = c.latitude.toFixed(6);
        input("longitude").value = c.longitude.toFixed(6);
        input("accuracy").value = Math.max(c.accuracy, 0.1).toFixed(1);
        input("captured_at").value = new Date(pos.timestamp || Date.now()).toISOString();
        status.textContent = status.getAttribute("data-found")
          .replace("{lat}", c.latitude.toFixed(6)).replace("{lon}", c.longitude.toFixed(6))
          .replace("{acc}", String(Math.round(c.accuracy)));
        button.disabled = false;
      }, function () {
        clear();
        say("denied");
        button.disabled = !consent.checked;
      }, {enableHighAccuracy: true, timeout: 20000, maximumAge: 60000});
    }

    consent.addEventListener("change", function () {
      button.disabled = !consent.checked;
      if (consent.checked) { ask(); } else { clear(); status.textContent = ""; }
    });
    button.addEventListener("click", ask);
  }

  var MAX_SIDE = 2560, SHRINK_ABOVE = 1500000;

  function shrink(file) {
    if (!/^image\/(jpeg|png)$/.test(file.type) || file.size <= SHRINK_ABOVE ||
        typeof createImageBitmap !== "function") {
      return Promise.resolve(file);
    }
    return createImageBitmap(file).then(function (bitmap) {
      var scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise(function (resolve) {
        canvas.toBlob(function (blob) {
          if (!blob || blob.size >= file.size) { resolve(file); return; }
          var name = file.name.replace(/\.[^.]*$/, "") + ".jpg";
          resolve(new File([blob], name, {type: "image/jpeg", lastModified: file.lastModified}));
        }, "image/jpeg", 0.85);
      });
    }).catch(function () { return file; });  // not decodable here: the server decides
  }

  function setupPhotos(input) {
    var list = document.getElementById(input.id + "-list");
    var form = input.form;
    var busy = false;
    function show(files) {
      list.textContent = "";
      Array.prototype.forEach.call(files, function (f) {
        var li = document.createElement("li");
        li.textContent = f.name + " · " + Math.max(1, Math.round(f.size / 1024)) + " KB";
        list.appendChild(li);
      });
    }
    input.addEventListener("change", function () {
      if (busy || typeof DataTransfer !== "function") { show(input.files); return; }
      busy = true;
      if (form) { form.setAttribute("aria-busy", "true"); }
      Promise.all(Array.prototype.map.call(input.files, shrink)).then(function (files) {
        var changed = files.some(function (f, i) { return f !== input.files[i]; });
        if (changed) {
          var dt = new DataTransfer();
          files.forEach(function (f) { dt.items.add(f); });
          input.files = dt.files;
        }
        show(input.files);
      }).finally(function () {
        busy = false;
        if (form) { form.removeAttribute("aria-busy"); }
      });
    });
    if (form) {
      // A submission while pictures are being redrawn would send the originals: wait.
      form.addEventListener("submit", function (e) {
        if (busy) { e.preventDefault(); }
      });
    }
  }

  document.querySelectorAll("fieldset[data-location]").forEach(setupLocation);
  document.querySelectorAll("input.photo-input[type=file]").forEach(setupPhotos);
})();
