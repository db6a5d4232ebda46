package apiclient_test

import "net/url"

func urlValues(m map[string][]string) url.Values { return url.Values(m) }
