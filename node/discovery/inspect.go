package discovery

import (
	"context"
	"errors"
	"net/http"
	"path"
	"sort"
	"strconv"
	"time"
)

// Registration is one member registered under a v2 discovery token.
type Registration struct {
	Key          string // the key: <token path>/<member ID hex>
	ID           string // the member ID (the key's base name)
	Value        string // name=peer-url[,...]
	CreatedIndex uint64
}

// V2Status is what a v2 discovery token holds.
type V2Status struct {
	Size          int
	Registrations []Registration // by createdIndex
	Index         uint64         // X-Etcd-Index of the listing
}

// InspectV2 reads a v2 discovery token without registering anything: the
// size key and the registrations, with the same errors a member would
// meet (a missing size key is a *SizeNotFoundError with the guide's
// wording). For tools that check a token before a bootstrap and show its
// registrations while members join.
func InspectV2(ctx context.Context, discoveryURL, proxy string, client *http.Client) (*V2Status, error) {
	c, err := newV2Client(V2{URL: discoveryURL, Proxy: proxy, Client: client, RequestTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	r, err := c.get(ctx, c.cluster+"/_config/size")
	if err != nil {
		var e *v2Error
		if errors.As(err, &e) && e.Code == 100 {
			return nil, &SizeNotFoundError{URL: discoveryURL}
		}
		return nil, err
	}
	size, err := strconv.ParseUint(r.Node.Value, 10, 0)
	if err != nil || size == 0 {
		return nil, ErrBadSizeKey
	}
	st := &V2Status{Size: int(size)}
	r, err = c.get(ctx, c.cluster)
	if err != nil {
		return nil, err
	}
	st.Index = r.index
	for _, n := range r.Node.Nodes {
		if path.Base(n.Key) == "_config" {
			continue
		}
		st.Registrations = append(st.Registrations, Registration{Key: n.Key, ID: path.Base(n.Key), Value: n.Value, CreatedIndex: n.CreatedIndex})
	}
	sort.SliceStable(st.Registrations, func(i, j int) bool {
		return st.Registrations[i].CreatedIndex < st.Registrations[j].CreatedIndex
	})
	return st, nil
}
