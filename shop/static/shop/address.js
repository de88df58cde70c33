// The checkout's address follows the country chosen: its labels ("ZIP code", "Postal code"),
// its list of states or provinces, and only the fields it has. Without this script the form
// still works: every field is shown and the server checks what belongs to the country.
(function () {
  "use strict";
  var form = document.querySelector("[data-checkout-form]");
  var source = document.getElementById("address-conventions");
  if (!form || !source) return;
  var conventions = JSON.parse(source.textContent);
  var country = form.querySelector("#id_country");
  var region = form.querySelector("#id_region");
  var postcode = form.querySelector("#id_postcode");
  if (!country || !region || !postcode) return;

  function relabel(name, text) {
    var label = form.querySelector('label[for="id_' + name + '"]');
    if (label && text) label.textContent = text;
  }

  function show(name, visible) {
    var wrapper = form.querySelector('[data-address-field="' + name + '"]');
    if (wrapper) wrapper.hidden = !visible;
  }

  function apply() {
    var convention = conventions[country.value];
    if (!convention) return;
    relabel("city", convention.cityLabel);
    relabel("postcode", convention.postcodeLabel);
    postcode.placeholder = convention.postcodeExample;
    var hasRegions = convention.regions.length > 0;
    show("region", hasRegions);
    show("county", Boolean(convention.countyLabel));
    if (convention.countyLabel) relabel("county", convention.countyLabel);
    if (hasRegions) {
      relabel("region", convention.regionLabel);
      // Keeps the state picked if it belongs to the new country, as a shopper would expect.
      var picked = region.value;
      var kept = convention.regions.some(function (r) { return r[0] === picked; });
      region.replaceChildren(new Option("Choose…", ""));
      convention.regions.forEach(function (r) { region.add(new Option(r[1], r[0])); });
      region.value = kept ? picked : "";
    }
  }

  country.addEventListener("change", apply);
  apply();
})();
