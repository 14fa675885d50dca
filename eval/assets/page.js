// The texts' table: filters (free text over every cell, one select per facet column) and pages of PAGE rows.
// Cells are set with textContent only: the data is untrusted and is never parsed as HTML.
(function () {
  "use strict";
  const PAGE = 50;
  const data = JSON.parse(document.getElementById("rows").textContent);
  const body = document.querySelector("#texts tbody");
  const query = document.getElementById("query");
  const status = document.getElementById("status");
  const prev = document.getElementById("prev");
  const next = document.getElementById("next");
  const haystack = data.rows.map((row) => row.join("\u0001").toLowerCase());
  const selects = data.facets.map((column) => document.getElementById("facet-" + column));
  let shown = data.rows.map((_, i) => i);
  let page = 0;
  let timer = null;

  selects.forEach((select, k) => {
    const counts = new Map();
    data.rows.forEach((row) => counts.set(row[data.facets[k]], (counts.get(row[data.facets[k]]) || 0) + 1));
    [...counts.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])))
      .forEach(([value, n]) => {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = (value === "" ? "(none)" : value) + " (" + n + ")";
        select.appendChild(option);
      });
    select.addEventListener("change", apply);
  });

  function apply() {
    const terms = query.value.toLowerCase().split(/\s+/).filter(Boolean);
    const wanted = selects.map((select) => (select.selectedIndex === 0 ? null : select.value));
    shown = [];
    for (let i = 0; i < data.rows.length; i++) {
      if (wanted.some((value, k) => value !== null && data.rows[i][data.facets[k]] !== value)) continue;
      if (terms.every((term) => haystack[i].includes(term))) shown.push(i);
    }
    page = 0;
    render();
  }

  function render() {
    const start = page * PAGE;
    const rows = shown.slice(start, start + PAGE).map((i) => {
      const tr = document.createElement("tr");
      const n = document.createElement("td");
      n.textContent = String(i + 1);
      tr.appendChild(n);
      data.rows[i].forEach((value, c) => {
        const td = document.createElement("td");
        td.textContent = value;
        if (data.small.includes(c)) td.className = "small";
        tr.appendChild(td);
      });
      return tr;
    });
    body.replaceChildren(...rows);
    const end = Math.min(start + PAGE, shown.length);
    status.textContent = (shown.length ? start + 1 : 0) + "\u2013" + end + " of " + shown.length + " rows" +
      (shown.length !== data.rows.length ? " (filtered from " + data.rows.length + ")" : "");
    prev.disabled = page === 0;
    next.disabled = end >= shown.length;
  }

  query.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(apply, 120);
  });
  prev.addEventListener("click", () => { page -= 1; render(); });
  next.addEventListener("click", () => { page += 1; render(); });
  render();
})();
