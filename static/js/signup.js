// Signup: suggest the booking address from the business name, and guess the time zone.
(function () {
  "use strict";

  var form = document.getElementById("signup-form");
  var name = document.getElementById("id_name");
  var slug = document.getElementById("id_slug");
  var zone = document.getElementById("id_timezone");
  var preview = document.getElementById("slug-preview");
  if (!form || !name || !slug) {
    return;
  }

  function slugify(text) {
    return text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+/, "")
      .slice(0, 50)
      .replace(/-+$/, "");
  }

  function showPreview() {
    if (!preview) {
      return;
    }
    var value = slug.value.trim();
    preview.hidden = value === "";
    preview.textContent = value ? "Your booking page: " + window.location.origin + "/b/" + value + "/" : "";
  }

  // Follow the name until the owner types an address of their own.
  var edited = slug.value !== "";
  slug.addEventListener("input", function () {
    edited = slug.value !== "";
    showPreview();
  });
  function followName() {
    if (!edited) {
      slug.value = slugify(name.value);
    }
    showPreview();
  }
  name.addEventListener("input", followName);
  // A name typed before this script ran (it is deferred) sent no event we heard.
  followName();

  // On a fresh form, start from the browser's own zone when we offer it.
  if (zone && form.dataset.fresh === "1" && window.Intl && Intl.DateTimeFormat) {
    var guess = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var offered = Array.prototype.some.call(zone.options, function (option) {
      return option.value === guess;
    });
    if (guess && offered) {
      zone.value = guess;
    }
  }
})();
