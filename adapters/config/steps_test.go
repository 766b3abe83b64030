package config_test

import _ "github.com/svcflow/svcflow/adapters/steps" // the built-in step kinds, as flowrun links them
