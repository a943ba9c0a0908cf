// Courses web view: catalogue, course page, lesson reader, quizzes, my badges; the flashcard
// review is in cards.js, the Authoring tab (instructors) in authoring.js. Every call goes
// through Aetherial.call(name, params) to the app's @app.view handlers; a badge is shared with
// Aetherial.shareCard (the chat asks the user where).
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  course: null, instructor: false, authored: [], quiz: null, timer: null,
  titles: {}, // course id → title, as far as the page has seen them
  cards: null, // the learner's review: {due, queue, busy}
  editing: null, // the quiz in the editor: {courseId, lessonId}
  deck: null, // the deck in the editor: {course_id, enabled, cards}
};
const SECTIONS = ["catalogue", "course", "lesson", "quiz", "badges", "cards", "author"];
const TABS = { catalogue: "tab-catalogue", badges: "tab-badges", cards: "tab-cards", author: "tab-author" };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function say(text) { $("status").textContent = text || ""; }

// The page runs sandboxed without "allow-forms": a browser never submits a form there (nor fires
// "submit"). A form's submit button and Enter in its fields run the handler instead, after the
// form's own validation (required, min, max).
function onSubmit(form, handler) {
  // A refusal is already shown next to the form (see callFor): nothing more to do with it.
  const run = () => {
    if (form.reportValidity()) {
      Promise.resolve(handler({ target: form, preventDefault() {} })).catch(() => {});
    }
  };
  for (const button of form.querySelectorAll("button[type=submit]")) {
    button.type = "button";
    button.addEventListener("click", run);
  }
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.tagName === "INPUT") {
      event.preventDefault();
      run();
    }
  });
}

async function call(name, params) {
  say("");
  try {
    return await Aetherial.call(name, params || {});
  } catch (error) {
    say(error.message || String(error));
    throw error;
  }
}

function show(section) {
  if (section !== "quiz") stopTimer();
  for (const id of SECTIONS) $(id).hidden = id !== section;
  const tab = TABS[section] || "tab-catalogue"; // a course, lesson or quiz: under "Courses"
  for (const id of Object.values(TABS)) $(id).classList.toggle("active", id === tab);
}

async function loadCatalogue() {
  const answer = await call("catalogue");
  state.instructor = answer.instructor;
  $("tab-author").hidden = !answer.instructor;
  const grid = $("grid");
  grid.replaceChildren();
  if (!answer.courses.length) grid.append(el("p", {}, "No courses yet."));
  for (const course of answer.courses) {
    state.titles[course.id] = course.title;
    const card = el("div", { class: "card" });
    if (course.cover_url) card.append(el("img", { src: course.cover_url, alt: "" }));
    card.append(
      el("h3", {}, course.title),
      el("p", {}, course.description),
      el("p", {}, course.enrolled ? "Enrolled" : course.price_text),
      el("button", { type: "button", onclick: () => openCourse(course.id) }, "Open"),
    );
    grid.append(card);
  }
  show("catalogue");
}

async function openCourse(courseId) {
  const { course } = await call("course.get", { course_id: courseId });
  state.course = course;
  state.titles[course.id] = course.title;
  const box = $("course");
  box.replaceChildren(
    el("button", { type: "button", class: "link", onclick: loadCatalogue }, "← Courses"),
    el("h2", {}, course.title),
    el("p", {}, course.description),
    el("p", {}, `${course.progress.done}/${course.progress.total} lessons`
      + (course.progress.completed_at ? " · completed ✓" : "")),
  );
  if (!course.enrolled) {
    box.append(el("button", { type: "button", onclick: () => enrol(course.id) },
      `Enrol · ${course.price_text}`));
  }
  const hasQuiz = course.sections.some((s) => s.lessons.some((x) => x.kind === "quiz"));
  if (course.enrolled && hasQuiz) box.append(el("p", { id: "course-grade" }));
  for (const section of course.sections) {
    const list = el("ol");
    for (const lesson of section.lessons) {
      const quiz = lesson.kind === "quiz";
      const label = `${lesson.seen ? "✓ " : ""}${lesson.title}${quiz ? " (quiz)" : ""}`;
      list.append(el("li", {}, el("button", {
        type: "button", class: lesson.seen ? "link seen" : "link", "data-lesson": lesson.id,
        onclick: () => (quiz ? openQuiz(course.id, lesson.id) : openLesson(course.id, lesson.id)),
      }, label)));
    }
    box.append(el("h3", {}, section.title), list);
  }
  show("course");
  if (course.enrolled && hasQuiz) showGrade(course.id).catch(() => {});
}

async function showGrade(courseId) {
  const grades = await Aetherial.call("quiz.grades", { course_id: courseId });
  const line = $("course-grade");
  if (line && state.course && state.course.id === courseId) {
    line.textContent = `Course grade: ${formatGrade(grades.course_grade)}`;
  }
}

async function enrol(courseId) {
  const answer = await call("enrol", { course_id: courseId });
  if (!answer.enrolled) say("Confirm the payment in the chat: you are enrolled once it is paid.");
  await openCourse(courseId);
}

async function openLesson(courseId, lessonId) {
  const answer = await call("lesson.get", { course_id: courseId, lesson_id: lessonId });
  $("lesson-title").textContent = answer.lesson.title;
  // The html was sanitised by the app (nh3) when the lesson was saved.
  $("lesson-body").innerHTML = answer.lesson.html
    || (answer.lesson.kind === "quiz" ? "<p>This lesson is a quiz.</p>" : "");
  if (answer.completed) say("Course completed — well done!");
  show("lesson");
}

// --- quizzes ---------------------------------------------------------------------------------

function formatGrade(grade) {
  return `${Math.round(Number(grade) * 100) / 100} %`;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function stopTimer() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  $("quiz-timer").hidden = true;
}

async function openQuiz(courseId, lessonId) {
  const info = await call("quiz.get", { course_id: courseId, lesson_id: lessonId });
  state.quiz = { courseId, lessonId, info, attempt: null, submitting: false };
  $("quiz-title").textContent = info.title;
  $("quiz-form").hidden = true;
  $("quiz-result").hidden = true;
  $("quiz-questions").replaceChildren();
  show("quiz");
  renderQuizInfo(info);
}

function renderQuizInfo(info) {
  const actions = $("quiz-actions");
  actions.replaceChildren();
  if (info.quiz !== undefined) { // the course's instructor: the definition, not an attempt
    const count = info.quiz ? info.quiz.questions.length : 0;
    $("quiz-info").textContent = info.quiz
      ? `You teach this course: ${plural(count, "question")}, pass at ${info.quiz.passing_grade} %.`
      : "You teach this course: this quiz has no questions yet.";
    const { courseId, lessonId } = state.quiz;
    actions.append(el("button", {
      type: "button", id: "quiz-edit",
      onclick: () => loadAuthor(courseId, lessonId).catch(() => {}),
    }, "Edit the quiz"));
    return;
  }
  const parts = [
    plural(info.questions, "question"),
    `pass at ${info.passing_grade} %`,
    `${info.attempts_left} of ${plural(info.attempt_limit, "attempt")} left`,
  ];
  if (info.time_limit) parts.push(`${Math.round(info.time_limit / 60)} min per attempt`);
  if (info.best_grade !== null && info.best_grade !== undefined) {
    parts.push(`best ${formatGrade(info.best_grade)}${info.passed ? " · passed ✓" : ""}`);
  }
  $("quiz-info").textContent = parts.join(" · ");
  if (info.open_attempt) {
    actions.append(el("button", {
      type: "button", id: "quiz-resume", onclick: () => showAttempt(info.open_attempt),
    }, `Resume attempt ${info.open_attempt.number}`));
  } else if (info.attempts_left > 0 && !info.passed) {
    actions.append(el("button", { type: "button", id: "quiz-start", onclick: startAttempt },
      info.attempts_used ? "Try again" : "Start the quiz"));
  } else if (info.attempts_left > 0) {
    actions.append(el("button", { type: "button", id: "quiz-start", onclick: startAttempt },
      "Take it again"));
  } else {
    actions.append(el("p", {}, "No attempts left."));
  }
}

async function startAttempt() {
  const { courseId, lessonId } = state.quiz;
  const attempt = await call("quiz.start", { course_id: courseId, lesson_id: lessonId });
  // The server's clock started the attempt: count down from its time limit as received.
  attempt.ends = attempt.deadline === null ? null : Date.now() + attempt.deadline - attempt.started_at;
  showAttempt(attempt);
}

function questionField(question, position) {
  const box = el("fieldset", { class: "question", "data-question": question.id });
  box.append(el("legend", {}, `${position}. ${question.text}`));
  if (question.kind === "numeric") {
    box.append(el("label", {}, "Your answer ",
      el("input", { type: "number", step: "any", name: question.id, "data-kind": "numeric" })));
    return box;
  }
  const type = question.kind === "single" ? "radio" : "checkbox";
  question.options.forEach((option, index) => {
    box.append(el("label", { class: "option" },
      el("input", { type, name: question.id, value: String(index) }), ` ${option}`));
  });
  if (question.kind === "multiple") box.append(el("p", { class: "muted" }, "Tick every right one."));
  return box;
}

function showAttempt(attempt) {
  if (attempt.ends === undefined) {
    attempt.ends = attempt.deadline === null || attempt.deadline === undefined ? null : attempt.deadline;
  }
  state.quiz.attempt = attempt;
  state.quiz.submitting = false;
  $("quiz-actions").replaceChildren();
  $("quiz-result").hidden = true;
  const list = $("quiz-questions");
  list.replaceChildren(...attempt.questions.map((q, i) => questionField(q, i + 1)));
  $("quiz-form").hidden = false;
  $("quiz-submit").disabled = false;
  stopTimer();
  if (attempt.ends !== null) {
    $("quiz-timer").hidden = false;
    tick();
    state.timer = setInterval(tick, 1000);
  }
}

function tick() {
  const attempt = state.quiz && state.quiz.attempt;
  if (!attempt || attempt.ends === null) return stopTimer();
  const left = Math.max(0, Math.ceil((attempt.ends - Date.now()) / 1000));
  const minutes = Math.floor(left / 60);
  const seconds = String(left % 60).padStart(2, "0");
  $("quiz-timer").textContent = `Time left ${minutes}:${seconds}`;
  $("quiz-timer").classList.toggle("urgent", left <= 30);
  if (left === 0) { // the server still takes a submission a moment late: send what is there
    stopTimer();
    submitAttempt();
  }
}

function collectAnswers(questions) {
  const form = $("quiz-form");
  const answers = {};
  for (const question of questions) {
    if (question.kind === "numeric") {
      const value = form.querySelector(`input[name="${question.id}"]`).value.trim();
      answers[question.id] = value === "" ? null : value;
    } else if (question.kind === "single") {
      const picked = form.querySelector(`input[name="${question.id}"]:checked`);
      answers[question.id] = picked ? Number(picked.value) : null;
    } else {
      const picked = form.querySelectorAll(`input[name="${question.id}"]:checked`);
      answers[question.id] = [...picked].map((input) => Number(input.value));
    }
  }
  return answers;
}

async function submitAttempt() {
  const quiz = state.quiz;
  if (!quiz || !quiz.attempt || quiz.submitting) return;
  quiz.submitting = true;
  $("quiz-submit").disabled = true;
  const attempt = quiz.attempt;
  let result;
  try {
    result = await call("quiz.submit", {
      attempt_id: attempt.attempt_id, answers: collectAnswers(attempt.questions),
    });
  } catch (error) {
    quiz.submitting = false;
    if (error.code === "time_up") return openQuiz(quiz.courseId, quiz.lessonId);
    $("quiz-submit").disabled = false;
    return;
  }
  stopTimer();
  quiz.attempt = null;
  showResult(attempt, result);
  // The rules and attempts left, as they are now (keeps the result on screen).
  const info = await call("quiz.get", { course_id: quiz.courseId, lesson_id: quiz.lessonId });
  quiz.info = info;
  renderQuizInfo(info);
  if (result.passed) say("Passed — well done!");
}

function solutionText(question, solution) {
  if (solution === undefined || solution === null) return "";
  if (question.kind === "numeric") {
    return solution.tolerance ? `${solution.value} ± ${solution.tolerance}` : String(solution.value);
  }
  const indexes = Array.isArray(solution) ? solution : [solution];
  return indexes.map((i) => question.options[i]).join(", ");
}

function showResult(attempt, result) {
  $("quiz-form").hidden = true;
  const box = $("quiz-result");
  const verdict = result.passed ? "Passed ✓" : "Not passed";
  box.replaceChildren(
    el("h3", { id: "quiz-grade" }, `${formatGrade(result.grade)} · ${verdict}`),
    el("p", {}, `Pass at ${result.passing_grade} % · best ${formatGrade(result.best_grade)} · `
      + `${plural(result.attempts_left, "attempt")} left`),
  );
  const list = el("ol", { class: "marks" });
  for (const question of attempt.questions) {
    const right = Boolean(result.correct[question.id]);
    const item = el("li", { "data-question": question.id, class: right ? "right" : "wrong" },
      `${right ? "✓" : "✗"} ${question.text}`);
    const solution = result.solutions ? solutionText(question, result.solutions[question.id]) : "";
    if (solution && !right) item.append(el("span", { class: "muted" }, ` — answer: ${solution}`));
    list.append(item);
  }
  box.append(list);
  if (result.passed) {
    box.append(el("button", { type: "button", onclick: () => openCourse(state.quiz.courseId) },
      "Back to the course"));
  }
  box.hidden = false;
}

// --- badges ----------------------------------------------------------------------------------

function verificationUrl(url) {
  try {
    return new URL(url, location.href).href; // the platform's address of the credential
  } catch (error) {
    return url;
  }
}

function dateText(ms) {
  try {
    return new Date(ms).toLocaleDateString(Aetherial.locale());
  } catch (error) { // a locale the browser does not know
    return new Date(ms).toLocaleDateString();
  }
}

async function loadBadges() {
  const { badges } = await call("badges.mine");
  const list = $("badge-list");
  list.replaceChildren();
  if (!badges.length) list.append(el("li", {}, "No badges yet: finish a course to earn one."));
  for (const badge of badges) {
    const issued = badge.issued_at ? dateText(badge.issued_at) : "";
    list.append(el("li", { class: "card badge", "data-badge": badge.credential_id },
      el("h3", {}, `🎓 ${badge.course_title}`),
      el("p", {}, [issued, badge.xp !== undefined && badge.xp !== null ? `${badge.xp} XP` : ""]
        .filter(Boolean).join(" · ")),
      el("p", {}, "Verify: ", el("code", { class: "url" }, verificationUrl(badge.url))),
      el("button", { type: "button", class: "share", onclick: () => shareBadge(badge) }, "Share"),
    ));
  }
  show("badges");
}

async function shareBadge(badge) {
  const { card } = await call("badge.card", { badge_id: badge.credential_id });
  try {
    await Aetherial.shareCard(card);
    say(`Shared your ${badge.course_title} badge.`);
  } catch (error) {
    say(error.code === "cancelled" ? "Not shared." : error.message || String(error));
  }
}

function start() {
  $("tab-catalogue").addEventListener("click", () => loadCatalogue().catch(() => {}));
  $("tab-author").addEventListener("click", () => loadAuthor().catch(() => {}));
  $("tab-badges").addEventListener("click", () => loadBadges().catch(() => {}));
  $("tab-cards").addEventListener("click", () => loadCards());
  $("quiz-back").addEventListener("click", () => openCourse(state.quiz.courseId));
  $("quiz-submit").addEventListener("click", () => submitAttempt());
  $("lesson-back").addEventListener("click", () => openCourse(state.course.id));
  $("card-reveal").addEventListener("click", revealCard);
  for (const button of ratingButtons()) {
    button.addEventListener("click", () => rateCard(Number(button.dataset.rating)));
  }
  $("author-pick").addEventListener("change", () => fillAuthor());
  $("section-edit-pick").addEventListener("change", fillSection);
  $("lesson-edit-pick").addEventListener("change", () => pickLesson().catch(() => {}));
  $("lesson-form").kind.addEventListener("change", showMarkdown);
  $("qe-pick").addEventListener("change", () => {
    const course = pickedCourse();
    if (course) openQuizEditor(course, $("qe-pick").value).catch(() => {});
  });
  $("qe-add").addEventListener("click", () => {
    addQuestion({ kind: "single", options: ["", ""] }).querySelector(".qe-text").focus();
  });
  $("deck-enabled").addEventListener("change", toggleDeck);
  onSubmit($("course-form"), saveCourse);
  onSubmit($("section-form"), saveSection);
  onSubmit($("lesson-form"), saveLesson);
  onSubmit($("quiz-editor"), saveQuiz);
  onSubmit($("deck-form"), addCard);
  $("seed").addEventListener("click", async () => {
    const answer = await call("demo.seed");
    say(answer.created.length ? `Added ${answer.created.join(", ")}.` : "The demo courses are there.");
  });
  const match = /[#&]course=([a-z0-9_-]+)/.exec(location.hash);
  const badges = /[#&]badges(&|=|$)/.test(location.hash);
  const cards = /[#&]cards(&|=|$)/.test(location.hash);
  if (cards) return loadCards();
  (match ? openCourse(match[1]) : badges ? loadBadges() : loadCatalogue()).catch(() => {});
}

// The other scripts (cards.js, authoring.js) are deferred too: all have run by now.
document.addEventListener("DOMContentLoaded", start);
