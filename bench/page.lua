-- GET a page of PAGE_MAX / 100 pages at random: PAGE is the path and query up to the
-- number, e.g. "/items/?skip=" or "/items/?after="; LIMIT rows a page (default 100).
math.randomseed(11)
local page = os.getenv("PAGE") or "/items/?skip="
local max = tonumber(os.getenv("PAGE_MAX") or "10000")
local limit = os.getenv("LIMIT") or "100"
request = function()
  return wrk.format("GET", page .. math.random(0, max) .. "&limit=" .. limit)
end
