// A "Copy" button on each command snippet. The pages work without it (select and copy by hand).
document.querySelectorAll("pre.snippet").forEach(function (pre) {
  if (!navigator.clipboard) return;  // only in secure contexts (https or localhost)
  var button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = "Copy";
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(pre.querySelector("code").innerText.trim()).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    });
  });
  pre.appendChild(button);
});
