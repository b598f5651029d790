// JavaScriptCore is loaded with dlopen when the first script is run or checked, not linked.
// Linking it made every process pay for loading it and its forty dependencies at start-up
// (about 11 ms of `rulecheck`'s 26 ms with no file to read), although most runs never meet a
// `<script>`. Each function the project calls is defined here with the library's own
// prototype, so the compiler checks the signatures against the headers, and forwards to the
// library's definition found by dlsym.
//
// The headers come from the library's -dev package, which installs them under
// /usr/include/webkitgtk-4.1: the forwarding headers in include/JavaScriptCore/ let
// `#include <JavaScriptCore/...>` find them without pkg-config, whose flags would link the
// library again.
#include "CJavaScriptCore.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define RECON_LIBRARY "libjavascriptcoregtk-4.1.so.0"

// Every function used: F(result type, name, parameters, arguments); V for those returning void.
#define RECON_JSC_FUNCTIONS(F, V) \
    F(bool, JSCheckScriptSyntax, (JSContextRef ctx, JSStringRef script, JSStringRef sourceURL, int startingLineNumber, JSValueRef *exception), (ctx, script, sourceURL, startingLineNumber, exception)) \
    F(JSClassRef, JSClassCreate, (const JSClassDefinition *definition), (definition)) \
    V(JSClassRelease, (JSClassRef jsClass), (jsClass)) \
    F(JSObjectRef, JSContextGetGlobalObject, (JSContextRef ctx), (ctx)) \
    F(JSContextGroupRef, JSContextGroupCreate, (void), ()) \
    V(JSContextGroupRelease, (JSContextGroupRef group), (group)) \
    V(JSContextGroupSetExecutionTimeLimit, (JSContextGroupRef group, double limit, JSShouldTerminateCallback callback, void *context), (group, limit, callback, context)) \
    F(JSGlobalContextRef, JSGlobalContextCreateInGroup, (JSContextGroupRef group, JSClassRef globalObjectClass), (group, globalObjectClass)) \
    V(JSGlobalContextRelease, (JSGlobalContextRef ctx), (ctx)) \
    F(JSValueRef, JSObjectCallAsFunction, (JSContextRef ctx, JSObjectRef object, JSObjectRef thisObject, size_t argumentCount, const JSValueRef arguments[], JSValueRef *exception), (ctx, object, thisObject, argumentCount, arguments, exception)) \
    F(JSPropertyNameArrayRef, JSObjectCopyPropertyNames, (JSContextRef ctx, JSObjectRef object), (ctx, object)) \
    F(void *, JSObjectGetPrivate, (JSObjectRef object), (object)) \
    F(JSValueRef, JSObjectGetProperty, (JSContextRef ctx, JSObjectRef object, JSStringRef propertyName, JSValueRef *exception), (ctx, object, propertyName, exception)) \
    F(JSValueRef, JSObjectGetPropertyAtIndex, (JSContextRef ctx, JSObjectRef object, unsigned propertyIndex, JSValueRef *exception), (ctx, object, propertyIndex, exception)) \
    F(bool, JSObjectIsFunction, (JSContextRef ctx, JSObjectRef object), (ctx, object)) \
    F(JSObjectRef, JSObjectMake, (JSContextRef ctx, JSClassRef jsClass, void *data), (ctx, jsClass, data)) \
    F(JSObjectRef, JSObjectMakeArray, (JSContextRef ctx, size_t argumentCount, const JSValueRef arguments[], JSValueRef *exception), (ctx, argumentCount, arguments, exception)) \
    F(JSObjectRef, JSObjectMakeDate, (JSContextRef ctx, size_t argumentCount, const JSValueRef arguments[], JSValueRef *exception), (ctx, argumentCount, arguments, exception)) \
    F(JSObjectRef, JSObjectMakeError, (JSContextRef ctx, size_t argumentCount, const JSValueRef arguments[], JSValueRef *exception), (ctx, argumentCount, arguments, exception)) \
    F(JSObjectRef, JSObjectMakeFunction, (JSContextRef ctx, JSStringRef name, unsigned parameterCount, const JSStringRef parameterNames[], JSStringRef body, JSStringRef sourceURL, int startingLineNumber, JSValueRef *exception), (ctx, name, parameterCount, parameterNames, body, sourceURL, startingLineNumber, exception)) \
    F(JSObjectRef, JSObjectMakeFunctionWithCallback, (JSContextRef ctx, JSStringRef name, JSObjectCallAsFunctionCallback callAsFunction), (ctx, name, callAsFunction)) \
    V(JSObjectSetProperty, (JSContextRef ctx, JSObjectRef object, JSStringRef propertyName, JSValueRef value, JSPropertyAttributes attributes, JSValueRef *exception), (ctx, object, propertyName, value, attributes, exception)) \
    F(size_t, JSPropertyNameArrayGetCount, (JSPropertyNameArrayRef array), (array)) \
    F(JSStringRef, JSPropertyNameArrayGetNameAtIndex, (JSPropertyNameArrayRef array, size_t index), (array, index)) \
    V(JSPropertyNameArrayRelease, (JSPropertyNameArrayRef array), (array)) \
    F(JSStringRef, JSStringCreateWithCharacters, (const JSChar *chars, size_t numChars), (chars, numChars)) \
    F(const JSChar *, JSStringGetCharactersPtr, (JSStringRef string), (string)) \
    F(size_t, JSStringGetLength, (JSStringRef string), (string)) \
    V(JSStringRelease, (JSStringRef string), (string)) \
    F(JSType, JSValueGetType, (JSContextRef ctx, JSValueRef value), (ctx, value)) \
    F(bool, JSValueIsArray, (JSContextRef ctx, JSValueRef value), (ctx, value)) \
    F(bool, JSValueIsDate, (JSContextRef ctx, JSValueRef value), (ctx, value)) \
    F(JSValueRef, JSValueMakeBoolean, (JSContextRef ctx, bool boolean), (ctx, boolean)) \
    F(JSValueRef, JSValueMakeNull, (JSContextRef ctx), (ctx)) \
    F(JSValueRef, JSValueMakeNumber, (JSContextRef ctx, double number), (ctx, number)) \
    F(JSValueRef, JSValueMakeString, (JSContextRef ctx, JSStringRef string), (ctx, string)) \
    F(JSValueRef, JSValueMakeUndefined, (JSContextRef ctx), (ctx)) \
    V(JSValueProtect, (JSContextRef ctx, JSValueRef value), (ctx, value)) \
    F(bool, JSValueToBoolean, (JSContextRef ctx, JSValueRef value), (ctx, value)) \
    F(double, JSValueToNumber, (JSContextRef ctx, JSValueRef value, JSValueRef *exception), (ctx, value, exception)) \
    F(JSObjectRef, JSValueToObject, (JSContextRef ctx, JSValueRef value, JSValueRef *exception), (ctx, value, exception)) \
    F(JSStringRef, JSValueToStringCopy, (JSContextRef ctx, JSValueRef value, JSValueRef *exception), (ctx, value, exception))

#define RECON_POINTER(result, name, parameters, arguments) result (*name) parameters;
#define RECON_VOID_POINTER(name, parameters, arguments) void (*name) parameters;
/// The library's definitions, filled in once by `load`.
static struct {
    RECON_JSC_FUNCTIONS(RECON_POINTER, RECON_VOID_POINTER)
} library;

static pthread_once_t loaded = PTHREAD_ONCE_INIT;
static char failure[512];

static void load(void) {
    void *handle = dlopen(RECON_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(failure, sizeof failure, "%s", dlerror());
        return;
    }
    void *symbol;
#define RECON_RESOLVE(name) \
    if (!(symbol = dlsym(handle, #name))) { \
        snprintf(failure, sizeof failure, "%s has no function %s", RECON_LIBRARY, #name); \
        return; \
    } \
    *(void **)&library.name = symbol;
#define RECON_RESOLVE_FUNCTION(result, name, parameters, arguments) RECON_RESOLVE(name)
#define RECON_RESOLVE_VOID(name, parameters, arguments) RECON_RESOLVE(name)
    RECON_JSC_FUNCTIONS(RECON_RESOLVE_FUNCTION, RECON_RESOLVE_VOID)
}

const char *recon_javascriptcore_load(void) {
    pthread_once(&loaded, load);
    return failure[0] ? failure : NULL;
}

#define RECON_FORWARD(result, name, parameters, arguments) \
    result name parameters { return library.name arguments; }
#define RECON_FORWARD_VOID(name, parameters, arguments) \
    void name parameters { library.name arguments; }
RECON_JSC_FUNCTIONS(RECON_FORWARD, RECON_FORWARD_VOID)
