// Debian installs JavaScriptCore's C API under webkitgtk-4.1/; see ../../JavaScriptCoreLoader.c.
#pragma once
#include <webkitgtk-4.1/JavaScriptCore/JSContextRef.h>
