// The viewer's page: the chat's list, from the app (Aetherial.call → @app.view("items")).
const bridge = window.Aetherial;
const list = document.getElementById("items");
const status = document.getElementById("status");

function render(answer) {
  list.replaceChildren(...answer.items.map((item) => {
    const li = document.createElement("li");
    li.textContent = item.name;
    return li;
  }));
  status.textContent = `${answer.items.length} items`;
}

async function run(call) {
  status.textContent = "waiting";
  try {
    render(await call());
  } catch (error) {
    status.textContent = `error: ${error.code}`;
  }
}

document.getElementById("add").addEventListener("click", () => {
  run(() => bridge.call("items", { add: document.getElementById("name").value }));
});
document.getElementById("fail").addEventListener("click", () => {
  run(() => bridge.call("fail", { left: 2 }));
});
run(() => bridge.call("items"));
