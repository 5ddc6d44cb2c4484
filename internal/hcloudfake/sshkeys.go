package hcloudfake

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

func (s *Server) createSSHKey(w http.ResponseWriter, r *http.Request, _ string) {
	var req schema.SSHKeyCreateRequest
	if e := decodeBody(r, &req); e != nil {
		writeError(w, e)
		return
	}
	fp, e := checkSSHKeyRequest(&req)
	if e != nil {
		writeError(w, e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.state.sshKeys {
		if k.Name == req.Name {
			writeError(w, uniqueness("name", "SSH key with the same name already exists"))
			return
		}
		if k.Fingerprint == fp {
			writeError(w, uniqueness("public_key", "SSH key with the same fingerprint already exists"))
			return
		}
	}
	labels := map[string]string{}
	if req.Labels != nil {
		labels = maps.Clone(*req.Labels)
	}
	k := &schema.SSHKey{
		ID: s.state.newID("ssh_key"), Name: req.Name, Fingerprint: fp,
		PublicKey: strings.TrimSpace(req.PublicKey), Labels: labels, Created: s.now(),
	}
	s.state.sshKeys[k.ID] = k
	writeJSON(w, http.StatusCreated, schema.SSHKeyCreateResponse{SSHKey: *k})
}

func uniqueness(field, msg string) *apiError {
	return &apiError{status: http.StatusConflict, code: "uniqueness_error", message: msg,
		details: map[string]any{"fields": []fieldError{{Name: field}}}}
}

// checkSSHKeyRequest validates a create request and returns the key's MD5
// fingerprint, the form the API reports.
func checkSSHKeyRequest(req *schema.SSHKeyCreateRequest) (string, *apiError) {
	var bad []fieldError
	if strings.TrimSpace(req.Name) == "" {
		bad = append(bad, fieldError{Name: "name", Messages: []string{"Missing data for required field."}})
	}
	fp, err := fingerprint(req.PublicKey)
	if err != nil {
		bad = append(bad, fieldError{Name: "public_key", Messages: []string{err.Error()}})
	}
	if req.Labels != nil {
		if msgs := checkLabels(*req.Labels); len(msgs) > 0 {
			slices.Sort(msgs)
			bad = append(bad, fieldError{Name: "labels", Messages: msgs})
		}
	}
	if len(bad) > 0 {
		return "", invalidInput(bad...)
	}
	return fp, nil
}

// fingerprint parses an authorized_keys line ("type base64 [comment]") and
// returns the MD5 fingerprint of the key, colon-separated hex.
func fingerprint(publicKey string) (string, error) {
	fields := strings.Fields(publicKey)
	if len(fields) < 2 {
		return "", fmt.Errorf("invalid public key")
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil || len(blob) < 4 {
		return "", fmt.Errorf("invalid public key")
	}
	n := binary.BigEndian.Uint32(blob)
	if uint64(len(blob)) < 4+uint64(n) || string(blob[4:4+n]) != fields[0] {
		return "", fmt.Errorf("invalid public key")
	}
	sum := md5.Sum(blob)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(hexes, ":"), nil
}

func (s *Server) getSSHKey(w http.ResponseWriter, _ *http.Request, rawID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, e := s.sshKeyByID(rawID)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, schema.SSHKeyGetResponse{SSHKey: *k})
}

func (s *Server) deleteSSHKey(w http.ResponseWriter, _ *http.Request, rawID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, e := s.sshKeyByID(rawID)
	if e != nil {
		writeError(w, e)
		return
	}
	delete(s.state.sshKeys, k.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) sshKeyByID(rawID string) (*schema.SSHKey, *apiError) {
	id, e := pathID(rawID)
	if e != nil {
		return nil, e
	}
	k, ok := s.state.sshKeys[id]
	if !ok {
		return nil, notFound("ssh key")
	}
	return k, nil
}

// sshKeyByRef finds a key by ID or name, as a server create refers to it.
func (s *Server) sshKeyByRef(ref schema.IDOrName) *schema.SSHKey {
	for _, k := range s.state.sshKeys {
		if (ref.ID != 0 && k.ID == ref.ID) || (ref.ID == 0 && k.Name == ref.Name) {
			return k
		}
	}
	return nil
}

type sshKeyList struct {
	schema.SSHKeyListResponse
	schema.MetaResponse
}

func (s *Server) listSSHKeys(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	sel, e := selectorParam(q.Get("label_selector"))
	if e != nil {
		writeError(w, e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []schema.SSHKey
	for _, id := range slices.Sorted(maps.Keys(s.state.sshKeys)) {
		k := s.state.sshKeys[id]
		if (q.Get("name") == "" || q.Get("name") == k.Name) &&
			(q.Get("fingerprint") == "" || q.Get("fingerprint") == k.Fingerprint) && sel.matches(k.Labels) {
			found = append(found, *k)
		}
	}
	lo, hi, meta, ok := pageOrError(w, len(found), q)
	if ok {
		writeJSON(w, http.StatusOK, sshKeyList{
			schema.SSHKeyListResponse{SSHKeys: append([]schema.SSHKey{}, found[lo:hi]...)},
			schema.MetaResponse{Meta: meta},
		})
	}
}
