"""Services: the public API's behaviour, free of HTTP. They take and return protocol Structs;
they never see a Request."""
