-- Showing a device's link again and its subscription URL (docs/operations.md, "Links").
-- token_sealed: the device token sealed with the control plane's secret key (AEAD), so the link
-- can be shown again; NULL for devices created before, whose link cannot be shown until the
-- token is rotated. sub_token_hash: SHA-256 (hex) of the subscription URL's token, looked up by
-- the public /sub/ route; NULL = no subscription URL. sub_token_sealed: that token, sealed, so
-- operators can show the URL again.
ALTER TABLE devices ADD COLUMN token_sealed TEXT;
ALTER TABLE devices ADD COLUMN sub_token_hash TEXT;
ALTER TABLE devices ADD COLUMN sub_token_sealed TEXT;
CREATE UNIQUE INDEX devices_by_sub_token ON devices (sub_token_hash);
