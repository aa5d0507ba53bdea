#pragma once
// An application's own header, named like one of kadnet's: kadnet's headers must not pick it up.
#error "kadnet included the application's core/errors.hpp instead of its own"
