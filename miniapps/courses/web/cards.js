// Courses web view: the learner's flashcard review (cards.due, cards.review). Loaded after
// courses.js, whose helpers ($, el, plural, show, state) it uses.
"use strict";

// --- flashcards (learners) -----------------------------------------------------------------

const RATINGS = { 1: "Again", 2: "Hard", 3: "Good", 4: "Easy" };

function dateTimeText(ms) {
  const options = { dateStyle: "medium", timeStyle: "short" };
  try {
    return new Date(ms).toLocaleString(Aetherial.locale(), options);
  } catch (error) { // a locale the browser does not know
    return new Date(ms).toLocaleString(undefined, options);
  }
}

async function loadCards() {
  show("cards");
  $("cards-error").textContent = "";
  $("card-next").textContent = "";
  try {
    const answer = await Aetherial.call("cards.due", {});
    state.cards = { due: answer.due_count, queue: answer.cards, busy: false };
  } catch (error) {
    state.cards = null;
    $("cards-error").textContent = error.message || String(error);
  }
  renderCards();
}

function ratingButtons() {
  return [...$("card-ratings").querySelectorAll("button[data-rating]")];
}

// The first card of the queue, its back hidden until "Show answer".
function renderCards() {
  const cards = state.cards;
  const count = cards ? cards.due : 0;
  const line = $("cards-due");
  line.dataset.count = String(count);
  line.textContent = count ? `${plural(count, "card")} due` : "Nothing due for review.";
  const card = cards && cards.queue[0];
  $("card-review").hidden = !card;
  if (!card) return;
  $("card-review").dataset.card = card.card_id;
  $("card-course").textContent = state.titles[card.course_id] || "";
  $("card-front").textContent = card.front;
  $("card-back").textContent = card.back;
  $("card-back").hidden = true;
  $("card-reveal").hidden = false;
  $("card-ratings").hidden = true;
  for (const button of ratingButtons()) button.disabled = false;
}

function revealCard() {
  $("card-back").hidden = false;
  $("card-reveal").hidden = true;
  $("card-ratings").hidden = false;
  ratingButtons()[2].focus(); // "Good"
}

async function rateCard(rating) {
  const cards = state.cards;
  const card = cards && cards.queue[0];
  if (!card || cards.busy) return;
  cards.busy = true;
  for (const button of ratingButtons()) button.disabled = true;
  $("cards-error").textContent = "";
  try {
    const result = await Aetherial.call("cards.review", { card_id: card.card_id, rating });
    cards.queue.shift();
    cards.due = Math.max(0, cards.due - 1); // scheduled later: no longer due now
    $("card-next").textContent = `${RATINGS[rating]} · next review ${dateTimeText(result.due)}`;
  } catch (error) {
    $("cards-error").textContent = error.message || String(error);
    for (const button of ratingButtons()) button.disabled = false;
    return;
  } finally {
    cards.busy = false;
  }
  // More were due than the server sent at once: fetch the next ones.
  if (!cards.queue.length && cards.due > 0) return loadCards();
  renderCards();
}
