"""Plan designs as data: the benefits, cost sharing and rules of each plan."""
