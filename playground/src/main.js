// The playground's page: a CodeMirror editor, and the panels the server fills as the spec changes.
// Built by `npm run build` (build.mjs) into ../cnndsl/serve/static/app.js. No network but this server.
import {EditorState, Compartment} from "@codemirror/state";
import {EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection} from "@codemirror/view";
import {defaultKeymap, history, historyKeymap, indentWithTab} from "@codemirror/commands";
import {StreamLanguage, syntaxHighlighting, HighlightStyle, bracketMatching, indentUnit} from "@codemirror/language";
import {setDiagnostics, lintGutter} from "@codemirror/lint";
import {tags} from "@lezer/highlight";

const $ = (id) => document.getElementById(id);
const state = {info: null, view: null, source: {where: null, name: "playground.cnn", sha: null}, lastOk: null,
               inFlight: false, dirty: false, diagramDepth: -1, diagramFor: null, seq: 0, layer: null};

// --- the language: words from the server (the grammar and the layer registry) ----------------------
function cnndslLanguage(keywords, layers) {
  const kw = new Set(keywords), kinds = new Set(layers);
  return StreamLanguage.define({
    name: "cnndsl",
    token(stream) {
      if (stream.eatSpace()) return null;
      if (stream.match(/^#.*/)) return "comment";
      if (stream.match(/^"(?:[^"\\]|\\.)*"?/)) return "string";
      if (stream.match(/^\d+(?:\.\d+)?(?:x\d+)*/)) return "number";
      const word = stream.match(/^[A-Za-z_][A-Za-z0-9_]*/);
      if (word) {
        const w = word[0];
        if (stream.match(/^\s*=(?!=)/, false)) return "propertyName";
        if (stream.match(/^\s*:/, false)) return "labelName";
        if (kw.has(w)) return "keyword";
        if (kinds.has(w)) return "typeName";
        if (stream.match(/^\s*\(/, false)) return "function";
        return "variableName";
      }
      if (stream.match(/^[{}()[\]]/)) return "bracket";
      if (stream.match(/^(?:==|!=|<=|>=|\/\/|[-+*\/%<>=,:@])/)) return "operator";
      stream.next();
      return null;
    },
    languageData: {commentTokens: {line: "#"}},
  });
}

const style = HighlightStyle.define([
  {tag: tags.comment, color: "#6a737d", fontStyle: "italic"},
  {tag: tags.keyword, color: "#8250df", fontWeight: "bold"},
  {tag: tags.typeName, color: "#0550ae", fontWeight: "bold"},
  {tag: tags.number, color: "#0a7f4f"},
  {tag: tags.string, color: "#a0522d"},
  {tag: tags.labelName, color: "#953800"},
  {tag: tags.propertyName, color: "#6639ba"},
  {tag: tags.function(tags.variableName), color: "#116329"},
  {tag: tags.operator, color: "#57606a"},
]);

// --- talking to the server -------------------------------------------------------------------------
// The token `cnndsl serve` printed in the address: kept for this tab, taken out of the address bar.
const token = (() => {
  const url = new URL(location.href);
  const given = url.searchParams.get("token");
  if (given) {
    sessionStorage.setItem("cnndsl-token", given);
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return given || sessionStorage.getItem("cnndsl-token") || "";
})();

async function post(path, body) {
  const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json",
                                                                "X-Cnndsl-Token": token},
                                      body: JSON.stringify(body)});
  return response;
}

async function json(path, body) {
  const response = body === undefined ? await fetch(path, {headers: {"X-Cnndsl-Token": token}})
                                      : await post(path, body);
  const data = await response.json();
  if (!response.ok) throw Object.assign(new Error(data.error ? data.error.message : response.statusText),
                                        {detail: data.error});
  return data;
}

function text() { return state.view.state.doc.toString(); }

// --- as you type: one check in flight at a time; the latest text is checked next ---------------------
function changed() {
  state.dirty = true;
  if (!state.inFlight) checkNow();
}

async function checkNow() {
  state.dirty = false;
  state.inFlight = true;
  const sent = text();
  const seq = ++state.seq;
  try {
    const result = await json("/api/check", {text: sent, name: state.source.name});
    if (seq === state.seq || !state.dirty) show(result, sent);
  } catch (err) {
    status(`the server did not answer: ${err.message}`, "bad");
  } finally {
    state.inFlight = false;
    if (state.dirty) checkNow();
  }
}

function toPos(doc, line, col) {
  if (!line) return 0;
  const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
  return Math.min(l.from + Math.max((col || 1) - 1, 0), l.to);
}

function show(result, sent) {
  const doc = state.view.state.doc;
  const marks = [];
  if (sent === text()) {
    for (const d of result.diagnostics) {
      let from = toPos(doc, d.line, d.col);
      let to = d.end_line ? toPos(doc, d.end_line, d.end_col) : from;
      if (to <= from) to = Math.min(from + 1, doc.length);
      if (to <= from && from > 0) from = to - 1;
      marks.push({from, to, severity: d.severity === "warning" ? "warning" : "error", message: d.message,
                  renderMessage: () => message(d)});
    }
    state.view.dispatch(setDiagnostics(state.view.state, marks));
  }
  showDiagnostics(result.diagnostics);
  document.body.classList.toggle("has-errors", !result.ok);
  if (!result.ok) {
    status(`${result.diagnostics.length} error — the panels show the last spec that checked`, "bad");
    return;
  }
  state.lastOk = {result, text: sent};
  status(`${result.name}: checked`, "good");
  showTotals(result);
  // the totals are painted first; the table (hundreds of rows for ResNet-152) in the next task
  setTimeout(() => {
    if (state.lastOk.result !== result) return;  // a newer answer came meanwhile
    showLayers(result);
    showLayerChoice(result);
    if (activeTab() === "diagram") refreshDiagram();
  }, 0);
}

function message(d) {
  const box = document.createElement("div");
  box.className = "diag-message";
  const head = document.createElement("div");
  head.textContent = d.message;
  box.appendChild(head);
  if (d.hint) {
    const hint = document.createElement("div");
    hint.className = "diag-hint";
    hint.textContent = `hint: ${d.hint}`;
    box.appendChild(hint);
  }
  return box;
}

function showDiagnostics(list) {
  const box = $("diagnostics");
  box.replaceChildren();
  for (const d of list) {
    const row = document.createElement("div");
    row.className = `diag diag-${d.severity}`;
    const where = d.line ? `${state.source.name}:${d.line}:${d.col}: ` : "";
    row.textContent = `${where}${d.severity}: ${d.message}`;
    if (d.hint) {
      const hint = document.createElement("div");
      hint.className = "diag-hint";
      hint.textContent = `hint: ${d.hint}`;
      row.appendChild(hint);
    }
    if (d.line) row.addEventListener("click", () => jump(d.line, d.col));
    box.appendChild(row);
  }
  box.hidden = list.length === 0;
}

function jump(line, col) {
  const pos = toPos(state.view.state.doc, line, col);
  state.view.dispatch({selection: {anchor: pos}, scrollIntoView: true});
  state.view.focus();
}

const fmt = (n) => n.toLocaleString("en-US");
const shape = (s) => s.join("x");

function showTotals(r) {
  const t = r.totals;
  const cells = [
    ["params", "parameters", fmt(t.params), "trainable"],
    ["macs", "MACs", fmt(t.macs), `${fmt(t.flops)} FLOPs`],
    ["weights", "weights", t.weight_bytes_text, `${fmt(t.weight_bytes)} bytes, float32`],
    ["activations", "activations", t.activation_bytes_text, "per sample"],
    ["shape", "input → output", `${shape(r.input)} → ${shape(r.output)}`, `${fmt(t.depth)} layers deep`],
  ];
  if (t.buffers) cells.splice(1, 0, ["buffers", "buffers", fmt(t.buffers), "batchnorm statistics"]);
  if (t.params) {
    const m = t.training;
    cells.push(["training", `to train, batch ${m.batch}`, m.total_adam,
                `with Adam; ${m.total_sgd} with SGD+momentum (weights, gradients, optimizer state, activations)`]);
  }
  const box = $("totals");
  box.replaceChildren();
  for (const [key, label, value, note] of cells) {
    const cell = document.createElement("div");
    cell.className = `total total-${key}`;
    cell.innerHTML = `<div class="total-label"></div><div class="total-value" id="total-${key}"></div>` +
                     `<div class="total-note"></div>`;
    cell.children[0].textContent = label;
    cell.children[1].textContent = value;
    cell.children[2].textContent = note;
    box.appendChild(cell);
  }
  $("title").textContent = r.title ? `${r.name}: ${r.title}` : r.name;
}

// Rows as `summary --depth N` shows them: each layer, or each block deeper than N name parts folded into one
function folded(r, depth) {
  if (!depth) return r.layers;
  const groups = new Map();
  for (const layer of r.layers) {
    const parts = layer.name.split(".");
    const key = parts.length > depth ? parts.slice(0, depth).join(".") : layer.name;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(layer);
  }
  return [...groups].map(([key, layers]) => layers.length === 1 && layers[0].name === key ? layers[0] : {
    name: key, kind: "block", from: null, line: layers[0].line, output: layers[layers.length - 1].output,
    options: `${r.calls[key] ? r.calls[key] + ", " : ""}${layers.length} layers`,
    params: layers.reduce((a, l) => a + l.params, 0), macs: layers.reduce((a, l) => a + l.macs, 0),
  });
}

function showLayers(r) {
  const body = $("layers").querySelector("tbody");
  const total = r.totals.params || 1;
  const rows = [];
  for (const layer of folded(r, Number($("layer-depth").value))) {
    const tr = document.createElement("tr");
    const percent = 100 * layer.params / total;
    const share = !layer.params ? "" : percent < 0.05 ? "<0.1%" : `${percent.toFixed(1)}%`;
    const cells = [/^\d+$/.test(layer.name) ? `(${layer.name})` : layer.name, layer.kind,
                   layer.options + (layer.from ? `  from: ${layer.from}` : ""),
                   shape(layer.output), layer.params ? fmt(layer.params) : "", share, layer.macs ? fmt(layer.macs) : ""];
    cells.forEach((value, i) => {
      const td = document.createElement("td");
      td.textContent = value;
      if (i >= 3) td.className = "num";
      tr.appendChild(td);
    });
    if (layer.line) tr.addEventListener("click", () => jump(layer.line, 1));
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

function showLayerChoice(r) {
  const select = $("map-layer");
  const keep = select.value;
  select.replaceChildren(...r.map_layers.map((name) => new Option(name, name)));
  if (r.map_layers.includes(keep)) select.value = keep;
}

// --- tabs ------------------------------------------------------------------------------------------
function activeTab() { return document.querySelector(".tab.active").dataset.tab; }

function openTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== `panel-${name}`;
  if (name === "diagram") refreshDiagram();
  if (name === "lineage" || name === "gap") loadLineage();
}

async function refreshDiagram() {
  if (!state.lastOk) return;
  const key = `${state.diagramDepth}\0${state.lastOk.text}`;
  if (state.diagramFor === key) return;
  state.diagramFor = key;
  const box = $("diagram");
  box.classList.add("stale");
  try {
    const d = await json("/api/diagram", {text: state.lastOk.text, name: state.source.name, depth: state.diagramDepth});
    if (state.diagramFor !== key) return;
    box.innerHTML = d.svg;  // Graphviz's SVG of our DOT: every user string in it was escaped (views/graph.py)
    depthButtons(d.depth, d.deepest);
  } catch (err) {
    box.textContent = err.detail && err.detail.hint ? `${err.message} (hint: ${err.detail.hint})` : err.message;
    state.diagramFor = null;
  } finally {
    box.classList.remove("stale");
  }
}

function depthButtons(depth, deepest) {
  const bar = $("depths");
  bar.replaceChildren();
  const label = document.createElement("span");
  label.textContent = "depth:";
  bar.appendChild(label);
  for (let k = 1; k <= deepest; k++) {
    const b = document.createElement("button");
    const all = k === deepest;
    b.textContent = all ? "all" : String(k);
    b.title = all ? "every layer" : `blocks deeper than ${k} name parts as one box`;
    b.classList.toggle("on", all ? depth === null : depth === k);
    b.addEventListener("click", () => { state.diagramDepth = all ? null : k; refreshDiagram(); });
    bar.appendChild(b);
  }
}

let lineage = null;
async function loadLineage() {
  if (lineage) return;
  $("lineage-chart").textContent = $("gap-table").textContent = "counting the shipped specs…";
  lineage = await json("/api/lineage");
  $("lineage-chart").innerHTML = lineage.svg;  // matplotlib's SVG of our own figure
  $("lineage-table").textContent = lineage.table;
  $("gap-table").textContent = lineage.gap;
  $("gap-note").textContent = lineage.gap_note || "";
}

// --- compile, save, feature maps -------------------------------------------------------------------
async function compileModel() {
  status("compiling…", "");
  const response = await post("/api/compile", {text: text(), name: state.source.name});
  if (!response.ok) {
    const data = await response.json();
    status(`cannot compile: ${data.error.message}${data.error.hint ? ` (hint: ${data.error.hint})` : ""}`, "bad");
    return;
  }
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = state.source.name.replace(/\.cnn$/, "") + ".onnx";
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  status(`compiled ${link.download} (${fmt(blob.size)} bytes, seeded weights)`, "good");
}

async function saveSpec() {
  let {where, name, sha} = state.source;
  if (where !== "folder") {
    const asked = window.prompt(`Save into ${state.info.folder} as:`, name);
    if (!asked) return;
    name = asked.endsWith(".cnn") ? asked : `${asked}.cnn`;
    sha = null;
  }
  try {
    const done = await json("/api/save", {name, text: text(), base: sha});
    state.source = {where: "folder", name, sha: done.sha256};
    await loadList(`folder/${name}`);
    status(`saved ${name}`, "good");
  } catch (err) {
    status(`not saved: ${err.message}${err.detail && err.detail.hint ? ` (hint: ${err.detail.hint})` : ""}`, "bad");
  }
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function runMaps() {
  const file = $("map-image").files[0];
  const layer = $("map-layer").value;
  if (!file || !layer || !state.lastOk) {
    $("map-status").textContent = !file ? "choose an image first" : "the spec has no layer with maps";
    return;
  }
  $("map-input").src = URL.createObjectURL(file);
  $("map-status").textContent = `running ${layer}…`;
  try {
    const image = await readFile(file);
    const r = await json("/api/maps", {text: state.lastOk.text, name: state.source.name, layer, image,
                                       filename: file.name, scale: $("map-scale").value});
    $("map-grid").src = `data:image/png;base64,${r.png}`;
    $("map-status").textContent = `${layer}: ${r.channels} channels of ${shape(r.shape.slice(1))}, ` +
      `ran on ${r.provider.replace("ExecutionProvider", "")}. Weights are random (seeded): ` +
      `the maps show what an untrained network does.` +
      r.notes.map((note) => ` ${note.charAt(0).toUpperCase()}${note.slice(1)}.`).join("");
  } catch (err) {
    $("map-status").textContent = `${err.message}${err.detail && err.detail.hint ? ` (hint: ${err.detail.hint})` : ""}`;
  }
}

// --- specs: the shipped ones and FOLDER's -----------------------------------------------------------
async function loadList(selected) {
  state.info = await json("/api/info");
  const select = $("spec");
  select.replaceChildren();
  const groups = [["shipped", "shipped specs", state.info.shipped]];
  if (state.info.folder) groups.unshift(["folder", state.info.folder, state.info.specs]);
  for (const [where, label, names] of groups) {
    const group = document.createElement("optgroup");
    group.label = label;
    for (const name of names) group.appendChild(new Option(name, `${where}/${name}`));
    select.appendChild(group);
  }
  if (selected) select.value = selected;
  $("save").hidden = !state.info.folder;
}

async function openSpec(value) {
  const [where, name] = value.split("/");
  const spec = await json(`/api/spec/${where}/${encodeURIComponent(name)}`);
  state.source = {where, name, sha: spec.sha256};
  state.diagramDepth = -1;
  state.view.dispatch({changes: {from: 0, to: state.view.state.doc.length, insert: spec.text}});
  window.history.replaceState(null, "", `#${value}`);
}

function status(textValue, kind) {
  const box = $("status");
  box.textContent = textValue;
  box.className = kind;
}

async function start() {
  await loadList();
  const language = cnndslLanguage(state.info.keywords, state.info.layers);
  state.view = new EditorView({
    parent: $("editor"),
    state: EditorState.create({
      doc: "",
      extensions: [
        lineNumbers(), highlightActiveLineGutter(), highlightActiveLine(), drawSelection(), history(),
        bracketMatching(), lintGutter(), indentUnit.of("  "), language, syntaxHighlighting(style),
        keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
        EditorView.updateListener.of((update) => { if (update.docChanged) changed(); }),
      ],
    }),
  });
  window.cnndsl = {view: state.view, state};  // for the browser tests and the curious
  $("spec").addEventListener("change", (e) => openSpec(e.target.value));
  $("compile").addEventListener("click", compileModel);
  $("save").addEventListener("click", saveSpec);
  $("map-run").addEventListener("click", runMaps);
  $("layer-depth").addEventListener("change", () => { if (state.lastOk) showLayers(state.lastOk.result); });
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => openTab(tab.dataset.tab));
  const first = decodeURIComponent(location.hash.slice(1)) || "shipped/lenet5.cnn";
  const known = [...$("spec").options].map((o) => o.value);
  const pick = known.includes(first) ? first : known.includes("shipped/lenet5.cnn") ? "shipped/lenet5.cnn" : known[0];
  $("spec").value = pick;
  await openSpec(pick);
  document.body.classList.add("ready");
}

start().catch((err) => status(`the playground could not start: ${err.message}`, "bad"));
