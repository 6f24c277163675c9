// Light progressive enhancement: every page works without it.
(function () {
  "use strict";
  // The environment switcher switches on change (its button stays for keyboards and no-JS).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.requestSubmit(); });
  });
  // Buttons that destroy something ask first.
  document.querySelectorAll("[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  // Feature forms show only the fieldsets of the chosen type.
  document.querySelectorAll("form[data-feature-form]").forEach(function (form) {
    var type = form.querySelector("select[name=type]");
    if (!type) { return; }
    function sync() {
      form.querySelectorAll("[data-for-type]").forEach(function (fieldset) {
        fieldset.hidden = fieldset.getAttribute("data-for-type") !== type.value;
      });
    }
    type.addEventListener("change", sync);
    sync();
  });
  // The first invalid field takes the focus, so keyboard and screen-reader users land on it.
  var invalid = document.querySelector("[aria-invalid=true]");
  if (invalid) { invalid.focus(); }
})();
