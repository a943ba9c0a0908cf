// Courses web view, Authoring tab (role instructor): courses, sections, lessons, the quiz editor
// and the flashcard deck. Loaded after courses.js, whose helpers ($, el, call, say, plural, show,
// state) it uses; every refusal of the server is shown in the form that caused it.
"use strict";

// --- authoring -------------------------------------------------------------------------------

function formValues(form) {
  const data = Object.fromEntries(new FormData(form).entries());
  for (const key of ["price", "drop_lowest"]) if (key in data) data[key] = Number(data[key] || 0);
  if ("weight" in data) data.weight = data.weight === "" ? 1 : Number(data.weight);
  return data;
}

// Call a view for a form: its refusal (the ViewError's message, its code in data-code) is shown
// in the form's own error line, beside what the person typed.
async function callFor(form, name, params) {
  const box = form.querySelector(".error");
  box.textContent = "";
  box.removeAttribute("data-code");
  say("");
  try {
    return await Aetherial.call(name, params || {});
  } catch (error) {
    box.textContent = error.message || String(error);
    if (error.code) box.dataset.code = error.code;
    throw error;
  }
}

function refuse(form, text) {
  const box = form.querySelector(".error");
  box.textContent = text;
  box.removeAttribute("data-code");
}

function pickedCourse() {
  return state.authored.find((c) => c.id === $("author-pick").value) || null;
}

// A course as a save answered it (sections and lessons included): no need to reload the list.
function storeAuthored(course) {
  const index = state.authored.findIndex((c) => c.id === course.id);
  if (index >= 0) state.authored[index] = course;
  else state.authored.push(course);
  state.titles[course.id] = course.title;
}

function renderAuthorPick(selected) {
  const pick = $("author-pick");
  pick.replaceChildren(el("option", { value: "" }, "New course"),
    ...state.authored.map((course) => el("option", { value: course.id }, course.title)));
  pick.value = state.authored.some((c) => c.id === selected) ? selected : "";
}

async function loadAuthor(courseId, quizLessonId) {
  const answer = await call("course.authored");
  state.authored = answer.courses;
  for (const course of answer.courses) state.titles[course.id] = course.title;
  renderAuthorPick(courseId === undefined ? $("author-pick").value : courseId);
  show("author");
  await fillAuthor({ quizLessonId });
  if (quizLessonId) $("quiz-editor").scrollIntoView();
}

// The forms for the picked course ("New course": only the course form). Loads the course's
// quiz and deck unless told it is a course just created (nothing to load).
async function fillAuthor({ fresh = false, quizLessonId } = {}) {
  const course = pickedCourse();
  const form = $("course-form");
  for (const other of document.querySelectorAll("#author form")) {
    other.querySelector(".error").textContent = "";
  }
  form.title.value = course ? course.title : "";
  form.description.value = course ? course.description : "";
  form.price.value = course ? course.price : 0;
  form.currency.value = course ? course.currency : "USD";
  form.published.checked = course ? course.published : false;
  for (const id of ["section-form", "lesson-form", "quiz-editor", "deck-form"]) $(id).hidden = !course;
  renderSections(course, "");
  renderLessons(course, "");
  if (!course) {
    state.editing = null;
    state.deck = null;
    return;
  }
  if (fresh) {
    state.deck = { course_id: course.id, enabled: false, cards: [] };
    renderDeck();
  }
  await Promise.all([
    openQuizEditor(course, quizLessonId).catch(() => {}),
    fresh ? null : loadDeck(course).catch(() => {}),
  ]);
}

async function saveCourse(event) {
  const form = event.target;
  const data = formValues(form);
  data.published = form.published.checked;
  const fresh = !data.course_id;
  if (fresh) delete data.course_id;
  const { course } = await callFor(form, "course.save", data);
  storeAuthored(course);
  renderAuthorPick(course.id);
  if (fresh) await fillAuthor({ fresh: true });
  say("Saved.");
}

// --- sections

function renderSections(course, selected) {
  const sections = course ? course.sections : [];
  const edit = $("section-edit-pick");
  edit.replaceChildren(el("option", { value: "" }, "New section"),
    ...sections.map((s) => el("option", { value: s.id }, s.title)));
  edit.value = sections.some((s) => s.id === selected) ? selected : "";
  fillSection();
  const pick = $("section-pick");
  const current = pick.value;
  pick.replaceChildren(...sections.map((s) => el("option", { value: s.id }, s.title)));
  if (sections.some((s) => s.id === current)) pick.value = current;
}

function fillSection() {
  const course = pickedCourse();
  const id = $("section-edit-pick").value;
  const section = course && course.sections.find((s) => s.id === id);
  const form = $("section-form");
  form.title.value = section ? section.title : "";
  form.weight.value = section && section.weight !== undefined ? section.weight : 1;
  form.drop_lowest.value = section && section.drop_lowest !== undefined ? section.drop_lowest : 0;
  form.querySelector("button").textContent = section ? "Save section" : "Add section";
}

async function saveSection(event) {
  const form = event.target;
  const course = pickedCourse();
  if (!course) return refuse(form, "Save the course first.");
  const data = formValues(form);
  const editing = Boolean(data.section_id);
  if (!editing) delete data.section_id;
  const answer = await callFor(form, "section.save", { course_id: course.id, ...data });
  storeAuthored(answer.course);
  const sections = answer.course.sections;
  const added = editing ? null : sections[sections.length - 1];
  renderSections(answer.course, editing ? data.section_id : "");
  if (added) $("section-pick").value = added.id; // the lesson form offers the new section
  say(editing ? "Section saved." : "Section added.");
}

// --- lessons

function renderLessons(course, selected) {
  const lessons = course ? course.sections.flatMap((s) => s.lessons) : [];
  const pick = $("lesson-edit-pick");
  pick.replaceChildren(el("option", { value: "" }, "New lesson"),
    ...lessons.map((x) => el("option", { value: x.id }, x.title + (x.kind === "quiz" ? " (quiz)" : ""))));
  pick.value = lessons.some((x) => x.id === selected) ? selected : "";
  if (!pick.value) fillLesson(null);
}

function fillLesson(lesson) {
  const form = $("lesson-form");
  form.title.value = lesson ? lesson.title : "";
  form.kind.value = lesson ? lesson.kind : "text";
  form.markdown.value = lesson ? lesson.markdown || "" : "";
  $("section-pick-label").hidden = Boolean(lesson); // a lesson keeps its section
  form.querySelector("button").textContent = lesson ? "Save lesson" : "Add lesson";
  showMarkdown();
}

function showMarkdown() {
  $("markdown-label").hidden = $("lesson-form").kind.value === "quiz";
}

async function pickLesson() {
  const course = pickedCourse();
  const lessonId = $("lesson-edit-pick").value;
  if (!course || !lessonId) return fillLesson(null);
  const form = $("lesson-form");
  const { lesson } = await callFor(form, "lesson.get", { course_id: course.id, lesson_id: lessonId });
  if ($("lesson-edit-pick").value === lessonId) fillLesson(lesson);
}

async function saveLesson(event) {
  const form = event.target;
  const course = pickedCourse();
  if (!course) return refuse(form, "Save the course first.");
  const data = formValues(form);
  const editing = Boolean(data.lesson_id);
  if (editing) delete data.section_id;
  else delete data.lesson_id;
  if (!editing && !data.section_id) return refuse(form, "Add a section first.");
  if (data.kind === "quiz") data.markdown = ""; // its questions are written in the quiz editor
  const answer = await callFor(form, "lesson.save", { course_id: course.id, ...data });
  storeAuthored(answer.course);
  renderLessons(answer.course, editing ? answer.lesson.id : "");
  if (editing) fillLesson({ ...answer.lesson, markdown: data.markdown });
  if (answer.lesson.kind === "quiz") {
    await openQuizEditor(answer.course, answer.lesson.id).catch(() => {});
  }
  say(editing ? "Lesson saved." : "Lesson added.");
}

// --- the quiz editor

const KINDS = { single: "Single choice", multiple: "Multiple choice", numeric: "Number" };
let questionCounter = 0;

function quizLessons(course) {
  return course.sections.flatMap((s) => s.lessons.filter((x) => x.kind === "quiz"));
}

async function openQuizEditor(course, lessonId) {
  const lessons = quizLessons(course);
  $("qe-none").hidden = lessons.length > 0;
  $("qe-body").hidden = !lessons.length;
  const pick = $("qe-pick");
  pick.replaceChildren(...lessons.map((x) => el("option", { value: x.id }, x.title)));
  state.editing = null;
  if (!lessons.length) return;
  pick.value = lessons.some((x) => x.id === lessonId) ? lessonId : lessons[0].id;
  const picked = pick.value;
  const answer = await callFor($("quiz-editor"), "quiz.get", { course_id: course.id, lesson_id: picked });
  if (pick.value !== picked) return; // another quiz was picked meanwhile
  state.editing = { courseId: course.id, lessonId: picked };
  fillQuizEditor(answer.quiz);
}

function fillQuizEditor(quiz) {
  const form = $("quiz-editor");
  form.passing_grade.value = quiz ? quiz.passing_grade : 50;
  form.attempt_limit.value = quiz ? quiz.attempt_limit : 1;
  form.time_limit.value = quiz && quiz.time_limit ? Math.round(quiz.time_limit / 6) / 10 : "";
  $("qe-questions").replaceChildren();
  const questions = quiz ? quiz.questions : [{ kind: "single", options: ["", ""] }];
  for (const question of questions) addQuestion(question);
}

function addQuestion(question) {
  questionCounter += 1;
  const box = el("fieldset", { class: "qe-question", "data-uid": `qe${questionCounter}` });
  const kind = el("select", { class: "qe-kind" },
    ...Object.entries(KINDS).map(([value, label]) => el("option", { value }, label)));
  kind.value = question.kind || "single";
  const text = el("textarea", { class: "qe-text", rows: "2", maxlength: "500", required: "" });
  text.value = question.text || "";
  const weight = el("input", { class: "qe-weight", type: "number", min: "0", max: "100", step: "any" });
  weight.value = question.weight === undefined ? 1 : question.weight;
  const value = el("input", { class: "qe-value", type: "number", step: "any" });
  value.value = question.value === undefined ? "" : question.value;
  const tolerance = el("input", { class: "qe-tolerance", type: "number", min: "0", step: "any" });
  tolerance.value = question.tolerance ? question.tolerance : "";
  box.append(
    el("legend", {}),
    el("button", { type: "button", class: "link qe-remove",
      onclick: () => { box.remove(); renumberQuestions(); } }, "Remove question"),
    el("label", {}, "Kind ", kind),
    el("label", {}, "Question ", text),
    el("label", {}, "Weight ", weight),
    el("div", { class: "qe-choice" },
      el("p", { class: "muted qe-hint" }),
      el("div", { class: "qe-options" }),
      el("button", { type: "button", class: "link", onclick: () => appendOption(box, "", false) },
        "Add option")),
    el("div", { class: "qe-numeric" },
      el("label", {}, "Answer ", value),
      el("label", {}, "Tolerance ± ", tolerance)),
  );
  const correct = Array.isArray(question.correct) ? question.correct : [question.correct];
  (question.options || ["", ""]).forEach((option, index) => {
    appendOption(box, option, correct.includes(index));
  });
  kind.addEventListener("change", () => showKind(box));
  $("qe-questions").append(box);
  showKind(box);
  renumberQuestions();
  return box;
}

function appendOption(box, text, correct) {
  const mark = el("input", { class: "qe-correct", name: `${box.dataset.uid}-correct` });
  mark.type = box.querySelector(".qe-kind").value === "multiple" ? "checkbox" : "radio";
  mark.checked = Boolean(correct);
  const input = el("input", { class: "qe-option", maxlength: "200" });
  input.value = text;
  const row = el("div", { class: "qe-option-row" }, mark, input);
  row.append(el("button", { type: "button", class: "link qe-remove-option",
    onclick: () => { row.remove(); renumberOptions(box); } }, "✕"));
  box.querySelector(".qe-options").append(row);
  renumberOptions(box);
}

// Numbers and accessible names follow the order on screen.
function renumberOptions(box) {
  box.querySelectorAll(".qe-option-row").forEach((row, index) => {
    row.querySelector(".qe-correct").setAttribute("aria-label", `Option ${index + 1} is right`);
    row.querySelector(".qe-option").setAttribute("aria-label", `Option ${index + 1}`);
    row.querySelector(".qe-remove-option").setAttribute("aria-label", `Remove option ${index + 1}`);
  });
}

function renumberQuestions() {
  $("qe-questions").querySelectorAll(".qe-question").forEach((box, index) => {
    box.querySelector("legend").textContent = `Question ${index + 1}`;
    box.querySelector(".qe-remove").setAttribute("aria-label", `Remove question ${index + 1}`);
  });
}

function showKind(box) {
  const kind = box.querySelector(".qe-kind").value;
  box.querySelector(".qe-choice").hidden = kind === "numeric";
  box.querySelector(".qe-numeric").hidden = kind !== "numeric";
  box.querySelector(".qe-hint").textContent = kind === "multiple"
    ? "Tick every right option (all of them are needed to score)."
    : "Mark the right option.";
  // Read the marks before changing their type: checking a radio unchecks its group.
  const marks = [...box.querySelectorAll(".qe-correct")];
  const right = marks.map((mark) => mark.checked);
  const first = right.indexOf(true);
  for (const mark of marks) mark.type = kind === "multiple" ? "checkbox" : "radio";
  marks.forEach((mark, index) => {
    mark.checked = kind === "multiple" ? right[index] : index === first; // one right at most
  });
}

// The definition quiz.save takes, as typed: the server checks it all and names what is wrong.
function quizDefinition(form) {
  const questions = [...$("qe-questions").querySelectorAll(".qe-question")].map((box) => {
    const kind = box.querySelector(".qe-kind").value;
    const question = { kind, text: box.querySelector(".qe-text").value };
    const weight = box.querySelector(".qe-weight").value.trim();
    if (weight !== "") question.weight = Number(weight);
    if (kind === "numeric") {
      const value = box.querySelector(".qe-value").value.trim();
      const tolerance = box.querySelector(".qe-tolerance").value.trim();
      question.value = value === "" ? null : value;
      question.tolerance = tolerance === "" ? 0 : tolerance;
      return question;
    }
    const rows = [...box.querySelectorAll(".qe-option-row")];
    question.options = rows.map((row) => row.querySelector(".qe-option").value);
    const right = rows.flatMap((row, index) => (row.querySelector(".qe-correct").checked ? [index] : []));
    question.correct = kind === "single" ? (right.length ? right[0] : null) : right;
    return question;
  });
  const minutes = form.time_limit.value.trim();
  return {
    questions,
    passing_grade: Number(form.passing_grade.value),
    attempt_limit: Number(form.attempt_limit.value),
    time_limit: minutes === "" ? null : Math.round(Number(minutes) * 60),
  };
}

async function saveQuiz(event) {
  const form = event.target;
  const editing = state.editing;
  if (!editing) return refuse(form, "Pick a quiz lesson first.");
  const { quiz } = await callFor(form, "quiz.save", {
    course_id: editing.courseId, lesson_id: editing.lessonId, definition: quizDefinition(form),
  });
  fillQuizEditor(quiz); // as stored: numbers normalised
  say(`Quiz saved: ${plural(quiz.questions.length, "question")}.`);
}

// --- the flashcard deck

async function loadDeck(course) {
  const deck = await callFor($("deck-form"), "cards.list", { course_id: course.id });
  if (pickedCourse() !== course) return;
  state.deck = deck;
  renderDeck();
}

function renderDeck() {
  const deck = state.deck;
  $("deck-enabled").checked = deck.enabled;
  const list = $("deck-list");
  list.replaceChildren();
  if (!deck.cards.length) list.append(el("li", { class: "muted" }, "No cards yet."));
  for (const card of deck.cards) {
    list.append(el("li", { "data-card": card.card_id },
      el("strong", {}, card.front), " — ", el("span", {}, card.back), " ",
      el("button", {
        type: "button", class: "link", "aria-label": `Delete card ${card.front}`,
        onclick: () => deleteCard(card).catch(() => {}),
      }, "Delete")));
  }
}

async function toggleDeck() {
  const box = $("deck-enabled");
  const enabled = box.checked;
  try {
    await callFor($("deck-form"), "cards.deck", { course_id: state.deck.course_id, enabled });
  } catch (error) {
    box.checked = !enabled;
    return;
  }
  state.deck.enabled = enabled;
  say(enabled ? "Flashcards on." : "Flashcards off.");
}

async function addCard(event) {
  const form = event.target;
  const deck = state.deck;
  const { card } = await callFor(form, "cards.add", {
    course_id: deck.course_id, front: form.front.value, back: form.back.value,
  });
  deck.cards.push(card);
  renderDeck();
  form.front.value = "";
  form.back.value = "";
  say("Card added.");
}

async function deleteCard(card) {
  await callFor($("deck-form"), "cards.delete", { card_id: card.card_id });
  state.deck.cards = state.deck.cards.filter((c) => c.card_id !== card.card_id);
  renderDeck();
  say("Card deleted.");
}
