#ifndef RECON_CJAVASCRIPTCORE_H
#define RECON_CJAVASCRIPTCORE_H
// JavaScriptCore's C API, loaded when the first script needs it (see JavaScriptCoreLoader.c).
#include <JavaScriptCore/JavaScript.h>
#include <stdbool.h>

// Exported by libjavascriptcoregtk but not declared in its public headers
// (JSContextRefPrivate.h upstream). Lets a runaway script be stopped.
typedef bool (*JSShouldTerminateCallback)(JSContextRef ctx, void *context);
JS_EXPORT void JSContextGroupSetExecutionTimeLimit(JSContextGroupRef group, double limit,
                                                   JSShouldTerminateCallback callback, void *context);

/// Loads JavaScriptCore once per process (later calls return the first call's outcome). Returns
/// NULL when every function below is ready to call, or why the library could not be loaded.
/// No function of the API may be called before this has returned NULL.
const char *recon_javascriptcore_load(void);
#endif
