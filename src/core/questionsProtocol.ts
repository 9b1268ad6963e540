// The message catalogue between the extension host and the end questions form (src/webview/endQuestions.ts,
// an editor panel). Both sides validate what they receive with these schemas, as for the session view.
// Protocol: the form says "ready", the host sends the questions and the form's state; the form sends the
// answers or a skip, and the host sends the new state (sent, or the error to show in the form).
import { endQuestionSchema } from './participant';
import * as z from './zod';

/** What the form shows: the questions, and whether they are still to be answered. */
export const questionsFormStateSchema = z.object({
  title: z.string(),
  questions: z.array(endQuestionSchema),
  /** open: to answer; sending: on its way to the VM; answered or skipped: recorded on the VM. */
  state: z.enum(['open', 'sending', 'answered', 'skipped']),
  /** Why the last send failed, in words; the form keeps what was typed. */
  error: z.string().nullable(),
});
export type QuestionsFormState = z.infer<typeof questionsFormStateSchema>;

/** An answer as the form sends it: text, a choice, a 1-5 number, or null when left empty. */
export const formAnswerSchema = z.union([z.string().max(10_000), z.number()]).nullable();

/** Host → form. */
export const questionsHostMessageSchema = z.discriminatedUnion('type', [z.object({ type: z.literal('state'), state: questionsFormStateSchema })]);
export type QuestionsHostMessage = z.infer<typeof questionsHostMessageSchema>;

/** Form → host. */
export const questionsFormMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('submit'), answers: z.record(z.string().max(64), formAnswerSchema) }),
  z.object({ type: z.literal('skip') }),
]);
export type QuestionsFormMessage = z.infer<typeof questionsFormMessageSchema>;
