// The run browser's only script: filters for the prompt cards, and the two videos of a card
// played in step. Plain DOM, no library, works from file:// URLs.
(function () {
  var cards = Array.prototype.slice.call(document.querySelectorAll("#cards .card"));
  var task = document.getElementById("filter-task");
  var outcome = document.getElementById("filter-outcome");
  var text = document.getElementById("filter-text");
  var count = document.getElementById("filter-count");

  function applyFilters() {
    var t = task ? task.value : "", o = outcome ? outcome.value : "";
    var words = text ? text.value.toLowerCase().split(/\s+/).filter(Boolean) : [];
    var shown = 0;
    cards.forEach(function (card) {
      var ok = (!t || card.dataset.task === t) && (!o || card.dataset.outcome === o) &&
        words.every(function (w) { return card.dataset.text.indexOf(w) >= 0; });
      card.classList.toggle("hidden", !ok);
      if (ok) shown += 1;
    });
    if (count) count.textContent = shown + " prompts";
  }
  [task, outcome].forEach(function (el) { if (el) el.addEventListener("change", applyFilters); });
  if (text) text.addEventListener("input", applyFilters);

  // Both motions of a card start together and loop together: the tuned video follows the base one.
  cards.forEach(function (card) {
    var videos = card.querySelectorAll("video");
    if (videos.length !== 2) return;
    var lead = videos[0], follow = videos[1];
    var ready = 0;
    function start() {
      ready += 1;
      if (ready < 2) return;
      lead.currentTime = 0; follow.currentTime = 0;
      lead.play(); follow.play();
    }
    lead.addEventListener("canplay", start, { once: true });
    follow.addEventListener("canplay", start, { once: true });
    lead.addEventListener("timeupdate", function () {
      if (Math.abs(follow.currentTime - lead.currentTime) > 0.15 && lead.currentTime < follow.duration) {
        follow.currentTime = lead.currentTime;
      }
    });
  });
})();
