package cli_test

import _ "github.com/svcflow/svcflow/adapters/component/all" // the shipped sources and stores, as cmd/flowrun links them
