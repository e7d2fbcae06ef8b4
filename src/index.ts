/**
 * baton: run long OpenAI Responses API calls in background mode so that nothing is lost and
 * nothing is paid for twice.
 */
export {};
