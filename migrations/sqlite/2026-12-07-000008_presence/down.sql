DROP TABLE presence_states;
DROP TABLE presence_streams;
DROP TABLE presence_nodes;
