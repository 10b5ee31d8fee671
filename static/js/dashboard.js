// Small progressive enhancements for the dashboard's own pages; every page works without it.
(function () {
  "use strict";

  // Filters that apply as soon as they change (the calendar's date, staff, cancelled).
  document.querySelectorAll("[data-autosubmit]").forEach(function (field) {
    field.addEventListener("change", function () {
      if (field.form) {
        field.form.requestSubmit();
      }
    });
  });

  // Ask before irreversible buttons (cancel an appointment, replace or turn off a feed).
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // One click selects a whole feed address for copying.
  document.querySelectorAll("[data-select-on-focus]").forEach(function (input) {
    input.addEventListener("focus", function () {
      input.select();
    });
  });
})();
