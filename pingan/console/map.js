// The console's map: the real district outlines (GeoJSON from /api/districts), warning
// areas, crews' bases and incidents, drawn with Leaflet (vendored, no tile server: the
// duty room may be offline). It only draws what app.js hands it; every text it shows
// is set as text, never as HTML.
"use strict";

const ConsoleMap = (() => {
  const LEVEL_COLOURS = {red: "#c62828", orange: "#ef6c00", yellow: "#f9a825", blue: "#1565c0",
    routine: "#607d8b", watch: "#9e9e9e"};
  const colour = (level) => LEVEL_COLOURS[level] || "#9e9e9e";
  let map = null;
  let fitted = false;
  let layers = null;
  let credited = null;  // the attribution in the language it was drawn in

  function text(value) {
    const span = document.createElement("span");
    span.textContent = value;
    return span;
  }

  function tag(layer, attrs) {
    const el = layer.getElement && layer.getElement();
    if (el) Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, v));
  }

  function ensure(container) {
    if (map) return;
    map = L.map(container, {zoomSnap: 0.25, attributionControl: true, preferCanvas: false});
    map.attributionControl.setPrefix('<span translate="no">Leaflet</span>');
    layers = {
      outlines: L.layerGroup().addTo(map),
      warnings: L.layerGroup().addTo(map),
      crews: L.layerGroup().addTo(map),
      incidents: L.layerGroup().addTo(map),
    };
  }

  // scene: {districts (GeoJSON), districtName(props), attribution (text), warnings: [{level, districts,
  // polygons: [[[lat, lon]…]], circles: [[lat, lon, km]], title}], crews: [{id, lat, lon,
  // busy, title, targets: [[lat, lon]…]}], incidents: [{id, lat, lon, level, resolved,
  // title}], onIncident(id)}
  function draw(container, scene) {
    ensure(container);
    map.invalidateSize();
    if (credited !== scene.attribution) {
      if (credited) map.attributionControl.removeAttribution(credited);
      map.attributionControl.addAttribution(scene.attribution);
      credited = scene.attribution;
    }
    Object.values(layers).forEach((group) => group.clearLayers());
    const warned = {};
    for (const w of scene.warnings) {
      for (const code of w.districts || []) {
        const found = Object.keys(LEVEL_COLOURS).indexOf(w.level);  // 0: red, the strongest
        const rank = found < 0 ? 99 : found;
        if (!(code in warned) || rank < warned[code].rank) warned[code] = {level: w.level, rank};
      }
    }

    const outlines = L.geoJSON(scene.districts, {
      filter: (f) => f.properties.kind === "district",
      // Every vertex drawn, none clipped: these are the real outlines, not a sketch.
      smoothFactor: 0,
      noClip: true,
      style: (f) => {
        const hot = warned[f.properties.code];
        return {color: "#51606f", weight: 1.5, fillColor: hot ? colour(hot.level) : "#dfe7ef",
          fillOpacity: hot ? 0.3 : 0.45, className: "district-outline"};
      },
      onEachFeature: (f, layer) => layer.bindTooltip(text(scene.districtName(f.properties)),
        {permanent: true, direction: "center", className: "district-label"}),
    }).addTo(layers.outlines);
    outlines.eachLayer((layer) => tag(layer, {"data-district": layer.feature.properties.code}));
    for (const f of scene.districts.features.filter((x) => x.properties.kind === "zone")) {
      const [lon, lat] = f.geometry.coordinates;
      const zone = L.circleMarker([lat, lon], {radius: 5, color: "#51606f", weight: 1,
        dashArray: "2 3", fillOpacity: 0, className: "zone-centre"}).addTo(layers.outlines);
      zone.bindTooltip(text(scene.districtName(f.properties)), {direction: "top"});
      tag(zone, {"data-zone": f.properties.code});
    }
    if (!fitted) {
      map.fitBounds(outlines.getBounds(), {padding: [12, 12]});
      fitted = true;
    }

    for (const w of scene.warnings) {
      const style = {color: colour(w.level), weight: 2, dashArray: "6 4", fillOpacity: 0.15,
        className: `warning-area level-${w.level}`};
      for (const ring of w.polygons || []) {
        L.polygon(ring, style).bindTooltip(text(w.title)).addTo(layers.warnings);
      }
      for (const [lat, lon, km] of w.circles || []) {
        L.circle([lat, lon], {...style, radius: km * 1000}).bindTooltip(text(w.title))
          .addTo(layers.warnings);
      }
    }

    for (const c of scene.crews) {
      for (const [lat, lon] of c.targets) {
        L.polyline([[c.lat, c.lon], [lat, lon]], {color: "#37474f", weight: 1.5,
          dashArray: "4 4", interactive: false}).addTo(layers.crews);
      }
      const base = L.circleMarker([c.lat, c.lon], {radius: 4, color: "#263238", weight: 1,
        fillColor: c.busy ? "#37474f" : "#ffffff", fillOpacity: 1,
        className: "crew-base"}).addTo(layers.crews);
      base.bindTooltip(text(c.title));
      tag(base, {"data-crew": c.id});
    }

    for (const inc of scene.incidents) {
      const marker = L.circleMarker([inc.lat, inc.lon], {radius: 8, color: "#1b1f24",
        weight: inc.resolved ? 1 : 2, fillColor: colour(inc.level),
        fillOpacity: inc.resolved ? 0.35 : 0.95,
        className: `incident-marker level-${inc.level}`}).addTo(layers.incidents);
      marker.bindTooltip(text(inc.title));
      marker.on("click", () => scene.onIncident(inc.id));
      tag(marker, {"data-incident": String(inc.id), "data-level": inc.level});
    }
  }

  return {draw};
})();
