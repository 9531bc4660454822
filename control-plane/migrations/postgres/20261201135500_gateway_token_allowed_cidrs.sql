-- Where a gateway token may be used from: comma-separated address blocks; NULL = anywhere.
ALTER TABLE gateway_tokens ADD COLUMN allowed_cidrs TEXT;
