// The demo page: reads each model's signature from the metadata API and builds a form for it.
// Inputs named *_bytes are images (file upload); other strings are text; numbers are numbers.
"use strict";

const $ = (id) => document.getElementById(id);
let inputs = {};
let outputNames = [];

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function shape(spec) {
  return (spec.tensor_shape.dim || []).map((d) => (d.size === "-1" ? "N" : d.size)).join("x");
}

async function chooseModel() {
  const name = $("model").value;
  if (document.body.dataset.model === name) return;
  delete document.body.dataset.model;
  $("result").textContent = "";
  const meta = await getJSON(`/v1/models/${name}/metadata`);
  const signature = meta.metadata.signature_def.signature_def.serving_default;
  inputs = signature.inputs;
  outputNames = Object.keys(signature.outputs);
  const describe = (group) => Object.entries(group).map(([n, s]) => `${n} (${s.dtype.slice(3).toLowerCase()} ${shape(s)})`).join(", ");
  $("signature").textContent = `version ${meta.model_spec.version}: ${describe(signature.inputs)} → ${describe(signature.outputs)}`;
  const fields = $("fields");
  fields.textContent = "";
  $("preview").hidden = true;
  for (const [input, spec] of Object.entries(inputs)) {
    const label = document.createElement("label");
    label.textContent = input;
    label.htmlFor = `in-${input}`;
    const field = document.createElement("input");
    field.id = `in-${input}`;
    field.name = input;
    if (input.endsWith("_bytes")) {
      field.type = "file";
      field.accept = "image/png,image/jpeg,image/gif,image/webp,image/bmp";
      field.addEventListener("change", () => {
        if (field.files[0]) { $("preview").src = URL.createObjectURL(field.files[0]); $("preview").hidden = false; }
      });
    } else if (spec.dtype === "DT_STRING") {
      field.type = "text";
      field.placeholder = "type text";
    } else {
      field.type = "number";
      field.placeholder = "optional";
    }
    fields.append(label, field);
  }
  document.body.dataset.model = name;  // the form is ready for this model (tests wait for it)
}

function fileAsBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function requestBody() {
  const columns = {};
  for (const [input, spec] of Object.entries(inputs)) {
    const field = $(`in-${input}`);
    if (input.endsWith("_bytes")) {
      if (!field.files[0]) throw new Error(`choose an image for ${input}`);
      columns[input] = [{ b64: await fileAsBase64(field.files[0]) }];
    } else if (spec.dtype === "DT_STRING") {
      columns[input] = [field.value];
    } else {
      columns[input] = field.value === "" ? [] : [Number(field.value)];  // empty: the model's default
    }
  }
  return { inputs: columns };  // columnar format: inputs may have different batch sizes
}

function show(name, value) {
  const row = document.createElement("tr");
  const key = document.createElement("td");
  key.textContent = name;
  const cell = document.createElement("td");
  if (value && value.b64 !== undefined) {
    const image = document.createElement("img");
    image.src = `data:image/png;base64,${value.b64}`;
    image.alt = name;
    cell.append(image);
  } else if (Array.isArray(value) && value.length > 16 && typeof value[0] === "number") {
    const top = value.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 3);
    cell.textContent = "top 3: " + top.map(([v, i]) => `#${i} ${v.toFixed(3)}`).join(", ");
  } else if (Array.isArray(value)) {
    const rows = value.length, cols = Array.isArray(value[0]) ? value[0].length : 0;
    cell.textContent = cols ? `${rows}x${cols} array (classes: ${[...new Set(value.flat())].sort((a, b) => a - b).join(", ")})` : JSON.stringify(value);
  } else {
    cell.textContent = String(value);
  }
  cell.className = `output-${name}`;
  row.append(key, cell);
  return row;
}

async function predict(event) {
  event.preventDefault();
  const result = $("result");
  result.textContent = "running…";
  try {
    const body = await getJSON(`/v1/models/${$("model").value}:predict`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(await requestBody()),
    });
    const outputs = outputNames.length === 1 ? { [outputNames[0]]: body.outputs } : body.outputs;
    const table = document.createElement("table");
    for (const [name, value] of Object.entries(outputs).sort()) table.append(show(name, value[0]));
    result.textContent = "";
    result.append(table);
  } catch (error) {
    result.innerHTML = "";
    const message = document.createElement("p");
    message.className = "error";
    message.textContent = `error: ${error.message}`;
    result.append(message);
  }
}

async function start() {
  const { models } = await getJSON("/v1/models");
  for (const model of models) {
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = model.name;
    $("model").append(option);
  }
  if (!models.length) $("signature").textContent = "no models yet: export one (kerasapps run TASK) and reload";
  else await chooseModel();
  $("model").addEventListener("change", chooseModel);
  $("form").addEventListener("submit", predict);
  document.body.dataset.ready = "true";
}

start();
