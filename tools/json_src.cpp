// Boost.JSON compiled into the CLI (header-only mode: Debian ships no separate library we need).
#include <boost/json/src.hpp>
