// Courses web view: catalogue, course page, lesson reader, authoring (instructors).
// Every call goes through Aetherial.call(name, params) to the app's @app.view handlers.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { course: null, instructor: false, authored: [] };

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
  for (const id of ["catalogue", "course", "lesson", "author"]) $(id).hidden = id !== section;
  $("tab-catalogue").classList.toggle("active", section !== "author");
  $("tab-author").classList.toggle("active", section === "author");
}

async function loadCatalogue() {
  const answer = await call("catalogue");
  state.instructor = answer.instructor;
  $("tab-author").hidden = !answer.instructor;
  const grid = $("grid");
  grid.replaceChildren();
  if (!answer.courses.length) grid.append(el("p", {}, "No courses yet."));
  for (const course of answer.courses) {
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
  for (const section of course.sections) {
    const list = el("ol");
    for (const lesson of section.lessons) {
      const label = `${lesson.seen ? "✓ " : ""}${lesson.title}${lesson.kind === "quiz" ? " (quiz)" : ""}`;
      list.append(el("li", {}, el("button", {
        type: "button", class: lesson.seen ? "link seen" : "link",
        onclick: () => openLesson(course.id, lesson.id),
      }, label)));
    }
    box.append(el("h3", {}, section.title), list);
  }
  show("course");
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

// --- authoring ---------------------------------------------------------------------------

function formValues(form) {
  const data = Object.fromEntries(new FormData(form).entries());
  for (const key of ["price", "drop_lowest"]) if (key in data) data[key] = Number(data[key] || 0);
  if ("weight" in data) data.weight = Number(data.weight || 0);
  return data;
}

async function loadAuthor() {
  const answer = await call("course.authored");
  state.authored = answer.courses;
  const pick = $("author-pick");
  const current = pick.value;
  pick.replaceChildren(el("option", { value: "" }, "New course"));
  for (const course of answer.courses) pick.append(el("option", { value: course.id }, course.title));
  pick.value = current;
  fillAuthor();
  show("author");
}

function fillAuthor() {
  const course = state.authored.find((c) => c.id === $("author-pick").value);
  const form = $("course-form");
  form.title.value = course ? course.title : "";
  form.description.value = course ? course.description : "";
  form.price.value = course ? course.price : 0;
  form.currency.value = course ? course.currency : "USD";
  form.published.checked = course ? course.published : false;
  const sections = $("section-pick");
  sections.replaceChildren();
  for (const section of course ? course.sections : []) {
    sections.append(el("option", { value: section.id }, section.title));
  }
}

async function saveCourse(event) {
  event.preventDefault();
  const data = formValues(event.target);
  data.published = event.target.published.checked;
  if (!data.course_id) delete data.course_id;
  const { course } = await call("course.save", data);
  $("author-pick").value = "";
  await loadAuthor();
  $("author-pick").value = course.id;
  fillAuthor();
  say("Saved.");
}

async function saveSection(event) {
  event.preventDefault();
  const courseId = $("author-pick").value;
  if (!courseId) return say("Save the course first.");
  await call("section.save", { course_id: courseId, ...formValues(event.target) });
  await loadAuthor();
  event.target.reset();
  say("Section added.");
}

async function saveLesson(event) {
  event.preventDefault();
  const courseId = $("author-pick").value;
  if (!courseId) return say("Save the course first.");
  await call("lesson.save", { course_id: courseId, ...formValues(event.target) });
  await loadAuthor();
  event.target.title.value = "";
  event.target.markdown.value = "";
  say("Lesson added.");
}

function start() {
  $("tab-catalogue").addEventListener("click", loadCatalogue);
  $("tab-author").addEventListener("click", loadAuthor);
  $("lesson-back").addEventListener("click", () => openCourse(state.course.id));
  $("author-pick").addEventListener("change", fillAuthor);
  $("course-form").addEventListener("submit", saveCourse);
  $("section-form").addEventListener("submit", saveSection);
  $("lesson-form").addEventListener("submit", saveLesson);
  $("seed").addEventListener("click", async () => {
    const answer = await call("demo.seed");
    say(answer.created.length ? `Added ${answer.created.join(", ")}.` : "The demo courses are there.");
  });
  const match = /[#&]course=([a-z0-9_-]+)/.exec(location.hash);
  (match ? openCourse(match[1]) : loadCatalogue()).catch(() => {});
}

start();
