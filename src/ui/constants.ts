// Every command, view and setting id in one place; package.json declares the same ids and a unit test
// checks that the two agree.

export const EXTENSION_ID = 'rebench-tools.rebench-session';

export const Commands = {
  connect: 'rebench.connect',
  tryDemo: 'rebench.tryDemo',
  importProfile: 'rebench.importProfile',
  removeProfile: 'rebench.removeProfile',
  startSession: 'rebench.startSession',
  showInstructions: 'rebench.showInstructions',
  scoreNow: 'rebench.scoreNow',
  submitAnswer: 'rebench.submitAnswer',
  showHistory: 'rebench.showHistory',
  pause: 'rebench.pause',
  resume: 'rebench.resume',
  endSession: 'rebench.endSession',
  exportLog: 'rebench.exportLog',
  verifyLog: 'rebench.verifyLog',
  openSolution: 'rebench.openSolution',
  showLog: 'rebench.showLog',
  disconnect: 'rebench.disconnect',
  focusView: 'rebench.focusSessionView',
  addNote: 'rebench.addNote',
  giveUp: 'rebench.giveUp',
  answerEndQuestions: 'rebench.answerEndQuestions',
  showChanges: 'rebench.showChanges',
  restoreSolution: 'rebench.restoreSolution',
} as const;

export const Views = {
  container: 'rebench',
  session: 'rebench.sessionView',
} as const;

export const Settings = {
  section: 'rebench',
  warningMinutes: 'countdown.warningMinutes',
  criticalMinutes: 'countdown.criticalMinutes',
  reminderMinutes: 'countdown.reminderMinutes',
  sshConfigFile: 'ssh.configFile',
  keepaliveIntervalSeconds: 'ssh.keepaliveIntervalSeconds',
  keepaliveCountMax: 'ssh.keepaliveCountMax',
  connectTimeoutSeconds: 'ssh.connectTimeoutSeconds',
  reconnectMaxDelaySeconds: 'reconnect.maxDelaySeconds',
  reconnectMaxAttempts: 'reconnect.maxAttempts',
  reconnectOnStartup: 'reconnect.onStartup',
  statusRefreshSeconds: 'statusRefreshSeconds',
  environmentsFolder: 'environmentsFolder',
} as const;

export const StateKeys = {
  lastConnection: 'rebench.lastConnection',
  profiles: 'rebench.profiles',
  /** Where Try the Demo opens the solution folder: "here" (a workspace folder) or "new" (a new window). */
  demoFolderWhere: 'rebench.demoFolderWhere',
  /** The instructions last shown in this workspace, so their tab comes back after a window reload. */
  instructions: 'rebench.instructions',
} as const;
