package config_test

import (
	"fmt"

	"github.com/svcflow/svcflow/adapters/config"
)

// References in values read the environment when the file is read; a
// variable without a default that is not set is an error at its position.
func ExampleWithLookupEnv() {
	src := []byte(`vars:
  api: ${CRM_URL:http://127.0.0.1:8081}/v1
  region: ${REGION}
  literal: "$${HOME}"
flows:
  f:
    steps: [{set: {y: "1"}}]
`)
	env := map[string]string{"REGION": "eu"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.LoadSources([]config.Source{{Name: "app.yaml", Data: src}}, config.WithLookupEnv(lookup))
	if err != nil {
		fmt.Println(err)
		return
	}
	vars := cfg.Vars()
	fmt.Println(vars["api"], vars["region"], vars["literal"])

	delete(env, "REGION")
	_, err = config.LoadSources([]config.Source{{Name: "app.yaml", Data: src}}, config.WithLookupEnv(lookup))
	fmt.Println(err)
	// Output:
	// http://127.0.0.1:8081/v1 eu ${HOME}
	// app.yaml:3:11: ${REGION}: environment variable REGION is not set (give a default: ${REGION:value})
}
