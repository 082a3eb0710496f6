// A table wider than a phone's screen scrolls in its own box (site.css): keyboard users must
// be able to reach and scroll it too, so such a table takes the focus (tabindex 0) and is
// named by its caption or the heading before it. Nothing else on the pages needs a script.
(function () {
  "use strict";
  function mark() {
    document.querySelectorAll("table").forEach(function (table) {
      var scrolls = table.scrollWidth > table.clientWidth + 1;
      if (scrolls && !table.hasAttribute("tabindex")) {
        table.setAttribute("tabindex", "0");
        if (!table.hasAttribute("aria-label")) {
          var heading = table.closest("section, main");
          var title = heading && heading.querySelector("h1, h2, h3");
          if (title) { table.setAttribute("aria-label", title.textContent.trim()); }
        }
      } else if (!scrolls && table.getAttribute("tabindex") === "0") {
        table.removeAttribute("tabindex");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", mark);
  window.addEventListener("resize", mark);
})();
