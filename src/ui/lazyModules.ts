// Modules bundled on their own and required on first use, to keep activation light.
// esbuild leaves these requires alone (they are external), and they resolve next to dist/extension.js.

export function loadSsh(): typeof import('../lazy/ssh') {
  return require('./ssh.js') as typeof import('../lazy/ssh');
}

export function loadMarkdown(): typeof import('../lazy/markdown') {
  return require('./markdown.js') as typeof import('../lazy/markdown');
}
