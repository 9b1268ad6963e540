// The end questions form's script (bundled to dist/media/endQuestions.js). The host owns the state; this
// script builds the form from the questions it is sent and posts the answers or a skip. Every message is
// validated on arrival; text from the host goes only into textContent and attribute values.
import './zodConfig';
import type { EndQuestion } from '../core/participant';
import { questionsHostMessageSchema, type QuestionsFormMessage, type QuestionsFormState } from '../core/questionsProtocol';
import { h, replaceChildren } from './dom';

interface VsCodeApi {
  postMessage(message: QuestionsFormMessage): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const main = h('main', { class: 'questions-form' }, h('p', { class: 'muted' }, 'Loading the questions…'));
document.body.replaceChildren(main);

/** The questions the form was built for: a new set rebuilds it, a new state only updates it. */
let builtFor = '';
let form: HTMLFormElement | null = null;
const status = h('div', { class: 'form-status', role: 'status', 'aria-live': 'polite' });
const error = h('div', { class: 'form-error', role: 'alert', hidden: true });
const send = h('button', { type: 'submit', class: 'btn primary' }, 'Send answers');
const skip = h('button', { type: 'button', class: 'btn secondary' }, 'Skip all questions');
skip.addEventListener('click', () => vscode.postMessage({ type: 'skip' }));
const buttons = h('div', { class: 'button-row' }, send, skip);

function field(q: EndQuestion, n: number): HTMLElement {
  const id = `q-${n}`;
  const legend = h('legend', {}, h('span', { class: 'q-number' }, `${n + 1}.`), ' ', q.text);
  const optional = h('span', { class: 'muted small optional' }, 'Optional: leave it empty to skip it.');
  if (q.type === 'text') {
    return h(
      'fieldset',
      { class: 'question text', 'data-id': q.id },
      legend,
      h('textarea', { id, name: q.id, rows: 3, maxlength: 4000, 'aria-describedby': `${id}-hint` }),
      h('div', { id: `${id}-hint` }, optional),
    );
  }
  const options =
    q.type === 'choice'
      ? q.choices.map((c, i) => h('label', { class: 'option' }, h('input', { type: 'radio', name: q.id, value: c, id: `${id}-${i}` }), h('span', {}, c)))
      : [1, 2, 3, 4, 5].map((v) =>
          h(
            'label',
            { class: 'option scale-option' },
            h('input', { type: 'radio', name: q.id, value: String(v), id: `${id}-${v}` }),
            h('span', { class: 'scale-number' }, String(v)),
            v === 1 && q.labels ? h('span', { class: 'scale-label muted' }, q.labels[0]) : null,
            v === 5 && q.labels ? h('span', { class: 'scale-label muted' }, q.labels[1]) : null,
          ),
        );
  const clear = h('button', { type: 'button', class: 'btn quiet small clear' }, 'Clear');
  clear.addEventListener('click', () => {
    for (const input of Array.from(document.querySelectorAll<HTMLInputElement>(`input[name="${CSS.escape(q.id)}"]`))) input.checked = false;
  });
  return h(
    'fieldset',
    { class: `question ${q.type}`, 'data-id': q.id },
    legend,
    h('div', { class: q.type === 'scale' ? 'options scale' : 'options', role: 'radiogroup', 'aria-label': q.text }, ...options),
    h('div', { class: 'hint-row' }, optional, clear),
  );
}

function collect(questions: readonly EndQuestion[]): Record<string, string | number | null> {
  const answers: Record<string, string | number | null> = {};
  for (const q of questions) {
    if (q.type === 'text') {
      const v = document.querySelector<HTMLTextAreaElement>(`textarea[name="${CSS.escape(q.id)}"]`)?.value ?? '';
      answers[q.id] = v.trim() === '' ? null : v;
    } else {
      const v = document.querySelector<HTMLInputElement>(`input[name="${CSS.escape(q.id)}"]:checked`)?.value;
      answers[q.id] = v === undefined ? null : q.type === 'scale' ? Number(v) : v;
    }
  }
  return answers;
}

function build(state: QuestionsFormState): void {
  const questions = state.questions;
  form = h('form', { class: 'questions', novalidate: true }, ...questions.map((q, i) => field(q, i)), error, buttons);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    vscode.postMessage({ type: 'submit', answers: collect(questions) });
  });
  replaceChildren(
    main,
    h('h1', {}, state.title),
    h(
      'p',
      { class: 'intro' },
      `Your session has ended. The organiser of the study asks ${questions.length === 1 ? 'one question' : `${questions.length} questions`} about it. ` +
        'Every question is optional, and you can skip them all. Your answers are recorded on the VM with your session and reach the organiser.',
    ),
    form,
    // Outside the form: once the answers are recorded the form is inert (and so silent to screen readers).
    status,
  );
}

function render(state: QuestionsFormState): void {
  const key = JSON.stringify(state.questions);
  if (key !== builtFor) {
    builtFor = key;
    build(state);
  }
  const busy = state.state === 'sending';
  const done = state.state === 'answered' || state.state === 'skipped';
  for (const el of Array.from(form?.querySelectorAll<HTMLInputElement | HTMLTextAreaElement | HTMLButtonElement>('input, textarea, button') ?? [])) {
    el.disabled = busy;
  }
  // Once recorded, the answers stay readable as given (a disabled radio hides which one was chosen in some
  // themes) but can no longer be changed or sent again.
  if (form) form.inert = done;
  form?.classList.toggle('done', done);
  buttons.hidden = done;
  send.textContent = busy ? 'Sending…' : 'Send answers';
  error.textContent = state.error ?? '';
  error.hidden = !state.error;
  status.textContent =
    state.state === 'answered'
      ? 'Thank you: your answers are recorded on the VM. You can close this tab.'
      : state.state === 'skipped'
        ? 'Skipped: the VM records that you chose not to answer. You can close this tab.'
        : '';
  status.className = `form-status${done ? ' done' : ''}`;
}

window.addEventListener('message', (event: MessageEvent) => {
  const parsed = questionsHostMessageSchema.safeParse(event.data);
  if (parsed.success) render(parsed.data.state);
});
vscode.postMessage({ type: 'ready' });
