// Booking page enhancements. Everything works without this file: day links and
// forms are plain HTML. Here a day's times are fetched from the JSON API and
// swapped in without a page load, and forms are sent only once.
(function () {
  "use strict";

  function timeLabel(iso) {
    // The API answers in the business's own offset, so the wall time is in the string.
    var match = /T(\d{2}):(\d{2})/.exec(iso);
    if (!match) {
      return iso;
    }
    var hour = parseInt(match[1], 10);
    var suffix = hour < 12 ? "AM" : "PM";
    var twelve = hour % 12 === 0 ? 12 : hour % 12;
    return twelve + ":" + match[2] + " " + suffix;
  }

  function pluralTimes(count) {
    return count + " free time" + (count === 1 ? "" : "s");
  }

  function enhancePicker(picker) {
    var region = picker.querySelector(".slot-region");
    var api = picker.getAttribute("data-api");
    var service = picker.getAttribute("data-service");
    var staff = picker.getAttribute("data-staff");
    var slotHref = picker.getAttribute("data-slot-href");
    if (!region || !api || !service || !slotHref || !window.fetch) {
      return;
    }
    var zoneLabel = picker.getAttribute("data-zone-label") || "";
    var pending = null;

    function render(link, slots) {
      var title = document.createElement("h3");
      title.className = "slots-title";
      title.id = "slots-title";
      title.tabIndex = -1;
      title.textContent = "Free times on " + link.getAttribute("data-label") + " ";
      if (zoneLabel) {
        var zoneSpan = document.createElement("span");
        zoneSpan.className = "zone";
        zoneSpan.textContent = zoneLabel;
        title.appendChild(zoneSpan);
      }
      region.textContent = "";
      region.appendChild(title);
      if (!slots.length) {
        var empty = document.createElement("p");
        empty.className = "no-slots";
        empty.textContent = "That day has just filled up; please pick another day.";
        region.appendChild(empty);
        return;
      }
      var list = document.createElement("ul");
      list.className = "slots";
      list.setAttribute("aria-labelledby", "slots-title");
      slots.forEach(function (slot) {
        var item = document.createElement("li");
        var anchor = document.createElement("a");
        anchor.className = "slot";
        anchor.href = slotHref + encodeURIComponent(slot.start);
        anchor.setAttribute("data-start", slot.start);
        anchor.textContent = timeLabel(slot.start);
        item.appendChild(anchor);
        list.appendChild(item);
      });
      region.appendChild(list);
    }

    function select(link) {
      var days = picker.querySelectorAll("a.day");
      Array.prototype.forEach.call(days, function (day) {
        var chosen = day === link;
        day.classList.toggle("is-selected", chosen);
        if (chosen) {
          day.setAttribute("aria-current", "date");
        } else {
          day.removeAttribute("aria-current");
        }
      });
    }

    function load(link) {
      var day = link.getAttribute("data-date");
      var url = api + "?service=" + encodeURIComponent(service) +
        "&start=" + day + "&end=" + day +
        (staff ? "&staff=" + encodeURIComponent(staff) : "");
      if (pending) {
        pending.abort();
      }
      pending = new AbortController();
      picker.classList.add("is-loading");
      region.setAttribute("aria-busy", "true");
      fetch(url, { headers: { Accept: "application/json" }, signal: pending.signal })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("availability " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          select(link);
          render(link, data.slots || []);
          link.setAttribute("aria-label", link.getAttribute("data-label") + ", " +
            pluralTimes((data.slots || []).length));
          if (window.history && window.history.replaceState) {
            window.history.replaceState(null, "", link.href);
          }
        })
        .catch(function (error) {
          if (error && error.name === "AbortError") {
            return;
          }
          // The plain link still works: fall back to a normal page load.
          window.location.assign(link.href);
        })
        .then(function () {
          picker.classList.remove("is-loading");
          region.removeAttribute("aria-busy");
        });
    }

    picker.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a.day") : null;
      if (!link || event.defaultPrevented || event.button !== 0 ||
          event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
        return;
      }
      event.preventDefault();
      load(link);
    });
  }

  function sendOnce(form) {
    // Coming back to the page from history makes the form usable again.
    window.addEventListener("pageshow", function () {
      form.removeAttribute("data-sent");
      Array.prototype.forEach.call(form.querySelectorAll("button[type=submit]"), function (b) {
        b.removeAttribute("aria-disabled");
        b.classList.remove("is-sending");
      });
    });
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-sent")) {
        event.preventDefault();
        return;
      }
      form.setAttribute("data-sent", "1");
      var buttons = form.querySelectorAll("button[type=submit]");
      Array.prototype.forEach.call(buttons, function (button) {
        button.setAttribute("aria-disabled", "true");
        button.classList.add("is-sending");
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-slot-picker]"), enhancePicker);
  Array.prototype.forEach.call(document.querySelectorAll("form[data-once]"), sendOnce);
})();
