H='"background":"habitat","clutter":"habitat","lighting":"scene","occluder":"habitat","scenes":12,"light_jitter":0.2'
SRC='"source_name":"src_hab","source":{'$H',"namespace_shapes":["star","hexagon","crescent","ellipse","diamond","chevron"],"parts":[2,3]}'
python exp2.py '{"name":"D1_hab_fam",'$SRC',"target":{'$H',"families":20},"runs":["supervised","spreading","spreading_nn","scratch_spreading"]}'
python exp2.py '{"name":"D2_hab_indep",'$SRC',"target":{'$H'},"runs":["spreading","supervised"]}'
