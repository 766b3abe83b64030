package message_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/adapters/message"
)

func ExampleMessage_MarshalJSON() {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, m := range []*message.Message{
		{ID: "1", Time: at, ContentType: "application/json", Payload: []byte(`{"order":42}`)},
		{ID: "2", Time: at, ContentType: "text/plain", Payload: []byte("hello")},
		{ID: "3", Time: at, ContentType: "application/octet-stream", Payload: []byte{0xca, 0xfe}},
	} {
		data, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		fmt.Println(string(data))
	}
	// Output:
	// {"id":"1","time":"2024-05-01T12:00:00Z","content_type":"application/json","payload":{"order":42}}
	// {"id":"2","time":"2024-05-01T12:00:00Z","content_type":"text/plain","payload":"hello"}
	// {"id":"3","time":"2024-05-01T12:00:00Z","content_type":"application/octet-stream","payload_base64":"yv4="}
}

func ExampleNewJSON() {
	m, err := message.NewJSON(map[string]int{"order": 42}, map[string]string{"http.path": "/orders"})
	if err != nil {
		panic(err)
	}
	var body struct {
		Order int `json:"order"`
	}
	if err := m.DecodeJSON(&body); err != nil {
		panic(err)
	}
	fmt.Println(m.ContentType, m.Meta["http.path"], body.Order)
	// Output: application/json /orders 42
}
